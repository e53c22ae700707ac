"""Idempotency-Key on POST /api/posts (IETF draft "The Idempotency-Key HTTP Header Field"):
a retry gets the first answer and never makes a second post; the same key with other content is
422, a key whose first request still runs is 409; keys live 24 hours, one key space per token."""

import hashlib
import uuid

import pytest

from app import create_app
from app.config import Config
from tests.backend.conftest import connect


def new_key():
    return str(uuid.uuid4())


def post(writer, key, title="Keyed", body="once"):
    return writer.post(
        "/api/posts", json={"title": title, "body": body}, headers={"Idempotency-Key": key}
    )


def posts_titled(app_env, title):
    with connect(app_env) as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM posts WHERE title = %s", (title,))
        return cur.fetchone()[0]


def test_retry_with_the_same_key_returns_the_first_answer_and_makes_no_second_post(writer, app_env):
    key, title = new_key(), f"retried {uuid.uuid4()}"
    first = post(writer, key, title)
    retry = post(writer, key, title)
    assert first.status_code == retry.status_code == 201
    assert retry.headers["Location"] == first.headers["Location"]
    assert retry.get_json() == first.get_json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert posts_titled(app_env, title) == 1


def test_the_key_may_be_sent_as_a_structured_field_string(writer, app_env):
    key, title = new_key(), f"quoted {uuid.uuid4()}"
    assert post(writer, f'"{key}"', title).status_code == 201
    assert post(writer, key, title).status_code == 201
    assert posts_titled(app_env, title) == 1


def test_same_key_with_other_content_is_422_and_stores_nothing(writer, app_env):
    key, title = new_key(), f"original {uuid.uuid4()}"
    assert post(writer, key, title).status_code == 201
    other = post(writer, key, title, body="changed")
    assert other.status_code == 422
    assert other.get_json()["error"] == "idempotency_key_reused"
    assert posts_titled(app_env, title) == 1


def test_key_of_a_request_still_running_is_409(writer, app_env, write_token):
    key, title = new_key(), f"in flight {uuid.uuid4()}"
    token_sha256 = hashlib.sha256(write_token.encode()).digest()
    # Another request's transaction that has claimed the key and not yet committed.
    with connect(app_env) as running, running.cursor() as cur:
        cur.execute(
            "INSERT INTO idempotency_keys "
            "(token_sha256, idempotency_key, request_sha256, status, location, body) "
            "VALUES (%s, %s, %s, 0, '', '')",
            (token_sha256, key, b"\0" * 32),
        )
        response = post(writer, key, title)
        running.rollback()
    assert response.status_code == 409
    assert response.get_json()["error"] == "idempotency_key_in_use"
    assert posts_titled(app_env, title) == 0
    # Once that request ended without storing anything, the key is free.
    assert post(writer, key, title).status_code == 201


def test_a_key_older_than_24_hours_is_forgotten(writer, app_env):
    key, title = new_key(), f"expired {uuid.uuid4()}"
    first = post(writer, key, title)
    with connect(app_env) as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE idempotency_keys SET created_at = NOW(6) - INTERVAL 25 HOUR "
            "WHERE idempotency_key = %s",
            (key,),
        )
        conn.commit()
    again = post(writer, key, title)
    assert again.status_code == 201
    assert again.headers["Location"] != first.headers["Location"]
    assert posts_titled(app_env, title) == 2


def test_each_token_has_its_own_key_space(app_env, write_token, tmp_path, app):
    second_token = uuid.uuid4().hex
    tokens = tmp_path / "api_tokens"
    tokens.write_text(f"{write_token}\n{second_token}\n")
    two_tokens = create_app(Config.from_env({**app_env, "API_TOKENS_FILE": str(tokens)}))
    try:
        key, title = new_key(), f"per token {uuid.uuid4()}"
        answers = []
        for token in (write_token, second_token):
            writer = two_tokens.test_client()
            writer.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
            answers.append(post(writer, key, title))
        assert [answer.status_code for answer in answers] == [201, 201]
        assert answers[0].headers["Location"] != answers[1].headers["Location"]
        assert posts_titled(app_env, title) == 2
    finally:
        two_tokens.extensions["db_engine"].dispose()


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there", '"', "back\\slash"])
def test_malformed_key_is_400_before_any_write(writer, app_env, key):
    title = f"bad key {uuid.uuid4()}"
    response = writer.post(
        "/api/posts",
        json={"title": title, "body": "x"},
        headers={"Idempotency-Key": key.encode("utf-8").decode("latin-1")},
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_idempotency_key"
    assert posts_titled(app_env, title) == 0


def test_posts_without_a_key_are_not_deduplicated(writer, app_env):
    title = f"unkeyed {uuid.uuid4()}"
    for _ in range(2):
        assert writer.post("/api/posts", json={"title": title, "body": "x"}).status_code == 201
    assert posts_titled(app_env, title) == 2
