"""Writes need a bearer token from the token file; reads stay public; no token reaches a log."""

import json
import logging

import pytest
import requests

from app import create_app
from app.config import Config, ConfigError
from app.logging import JsonFormatter
from tests.stack import free_port, wait_until

POST = {"title": "t", "body": "b"}
CHALLENGE = 'Bearer realm="api"'
INVALID = 'Bearer realm="api", error="invalid_token"'
WRONG_TOKEN = "W" * 40


def assert_unauthorized(response, challenge):
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.headers["WWW-Authenticate"] == challenge
    data = response.get_json()
    assert data["error"] == "unauthorized"
    assert data["request_id"] == response.headers["X-Request-ID"]


def test_reads_need_no_token(client):
    assert client.get("/api/posts").status_code == 200
    assert client.get("/").status_code == 200


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_write_without_a_token_is_401_with_a_bearer_challenge(client, method):
    response = client.open("/api/posts/1", method=method, json=POST)
    assert_unauthorized(response, CHALLENGE)


@pytest.mark.parametrize(
    "authorization",
    [
        f"Bearer {WRONG_TOKEN}",
        "Bearer ",
        "Bearer",
        "Bearer {token} extra",
        "Bearer {token}x",
        "Bearer x{token}",
        "Bearer \u00e9{token}",
    ],
    ids=["wrong", "empty", "no-token", "trailing-word", "suffix", "prefix", "non-ascii"],
)  # fmt: skip
def test_wrong_or_malformed_token_is_401(client, write_token, authorization):
    header = authorization.format(token=write_token)
    response = client.post("/api/posts", json=POST, headers={"Authorization": header})
    assert_unauthorized(response, INVALID)


@pytest.mark.parametrize("authorization", ["Basic dXNlcjpwYXNz", "Token {token}"])
def test_another_scheme_is_401_with_a_challenge_but_no_error_code(
    client, write_token, authorization
):
    # RFC 6750 3.1: a client that tried an unsupported scheme sent no bearer token to judge.
    header = authorization.format(token=write_token)
    response = client.post("/api/posts", json=POST, headers={"Authorization": header})
    assert_unauthorized(response, CHALLENGE)


@pytest.mark.parametrize("spaces", [2, 5])
def test_token_after_several_spaces_is_accepted(client, write_token, spaces):
    # RFC 7235: credentials = auth-scheme [ 1*SP token68 ].
    header = "Bearer" + " " * spaces + write_token
    response = client.post("/api/posts", json=POST, headers={"Authorization": header})
    assert response.status_code == 201, response.get_json()


def assert_token_in_the_wrong_place(response):
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api", error="invalid_request"'
    data = response.get_json()
    assert data["error"] == "invalid_request"
    assert "Authorization" in data["message"]
    assert data["request_id"] == response.headers["X-Request-ID"]


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
@pytest.mark.parametrize("name", ["access_token", "access%5Ftoken"])
@pytest.mark.parametrize("which", ["right", "wrong"])
def test_token_in_the_query_is_400_naming_the_authorization_header(
    client, write_token, method, name, which
):
    value = write_token if which == "right" else WRONG_TOKEN
    response = client.open(f"/api/posts/1?limit=1&{name}={value}", method=method, json=POST)
    assert_token_in_the_wrong_place(response)


@pytest.mark.parametrize("which", ["right", "wrong"])
def test_token_in_a_form_body_is_400_naming_the_authorization_header(client, write_token, which):
    value = write_token if which == "right" else WRONG_TOKEN
    response = client.post(
        "/api/posts",
        data=f"title=t&body=b&access_token={value}",
        content_type="application/x-www-form-urlencoded",
    )
    assert_token_in_the_wrong_place(response)


def test_query_token_is_refused_even_beside_a_valid_header(client, write_token):
    # RFC 6750 3.1: more than one way of sending a token is itself an invalid request.
    response = client.post(
        f"/api/posts?access_token={write_token}",
        json=POST,
        headers={"Authorization": f"Bearer {write_token}"},
    )
    assert_token_in_the_wrong_place(response)


def test_the_right_token_writes_and_the_scheme_is_case_insensitive(client, write_token):
    response = client.post(
        "/api/posts", json=POST, headers={"Authorization": f"bearer {write_token}"}
    )
    assert response.status_code == 201


def test_every_token_in_the_file_is_accepted_during_a_rotation(app_env, tmp_path):
    old, new = "o" * 32, "n" * 40
    tokens = tmp_path / "api_tokens"
    tokens.write_text(f"# rotation: new token handed out, old one still valid\n{old}\n\n{new}\n")
    app = create_app(Config.from_env({**app_env, "API_TOKENS_FILE": str(tokens)}))
    try:
        writer = app.test_client()
        for token in (old, new):
            auth = {"Authorization": f"Bearer {token}"}
            assert writer.post("/api/posts", json=POST, headers=auth).status_code == 201
        auth = {"Authorization": f"Bearer {'x' * 32}"}
        assert writer.post("/api/posts", json=POST, headers=auth).status_code == 401
    finally:
        app.extensions["db_engine"].dispose()


def test_token_is_checked_before_any_database_work(app_env, write_token):
    # No database behind this app: a write that got past the check would answer 503.
    unreachable = {**app_env, "DB_PORT": str(free_port()), "DB_CONNECT_TIMEOUT": "1"}
    app = create_app(Config.from_env(unreachable))
    try:
        anonymous = app.test_client().post("/api/posts", json=POST)
        assert_unauthorized(anonymous, CHALLENGE)
        auth = {"Authorization": f"Bearer {write_token}"}
        authorised = app.test_client().post("/api/posts", json=POST, headers=auth)
        assert authorised.status_code == 503  # control: this one did reach the database
    finally:
        app.extensions["db_engine"].dispose()


@pytest.mark.parametrize(
    "content,problem",
    [
        ("", "holds no token"),
        ("# only a comment\n\n", "holds no token"),
        ("short-token\n", "at least 32"),
        ("a token with spaces that is long enough\n", "at least 32"),
    ],
)
def test_backend_refuses_to_start_with_no_or_weak_tokens(app_env, tmp_path, content, problem):
    tokens = tmp_path / "api_tokens"
    tokens.write_text(content)
    with pytest.raises(ConfigError, match=problem):
        Config.from_env({**app_env, "API_TOKENS_FILE": str(tokens)})


def test_backend_refuses_to_start_without_a_token_file(app_env):
    without = {k: v for k, v in app_env.items() if k != "API_TOKENS_FILE"}
    with pytest.raises(ConfigError, match="API_TOKENS_FILE is required"):
        create_app(Config.from_env(without))


def test_no_token_reaches_the_log(gunicorn, write_token):
    for token in (write_token, WRONG_TOKEN):
        response = requests.delete(
            f"{gunicorn.url}/api/posts/999999999",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert response.status_code in (401, 404)
    # Both requests were logged (the access line is written after the response went out).
    log = wait_until(
        lambda: (
            '"status": 401' in gunicorn.log()
            and '"status": 404' in gunicorn.log()
            and gunicorn.log()
        ),
        10,
        "gunicorn's access lines of both requests",
    )
    assert write_token not in log
    assert WRONG_TOKEN not in log


def test_a_token_in_the_query_is_redacted_in_every_log_line(gunicorn, write_token):
    for query in (f"access_token={write_token}", f"limit=1&access_token={write_token}&x=1"):
        response = requests.get(f"{gunicorn.url}/api/posts?{query}", timeout=10)
        assert response.status_code == 400
    log = wait_until(
        lambda: gunicorn.log().count('"status": 400') >= 2 and gunicorn.log(),
        10,
        "gunicorn's access lines of both requests",
    )
    assert write_token not in log
    assert '"query": "access_token=[redacted]"' in log
    assert '"query": "limit=1&access_token=[redacted]&x=1"' in log


@pytest.mark.parametrize(
    "text,logged",
    [
        ("GET /?access_token=SECRET HTTP/1.1", "GET /?access_token=[redacted] HTTP/1.1"),
        ("a=1&access_token=SECRET&b=2", "a=1&access_token=[redacted]&b=2"),
        ("access_token=S1&access_token=S2", "access_token=[redacted]&access_token=[redacted]"),
        ("%61ccess%5Ftoken=SECRET", "%61ccess%5Ftoken=[redacted]"),
    ],
)  # fmt: skip
def test_json_log_lines_redact_access_token_values_in_messages_and_fields(text, logged):
    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, "%s", (text,), None)
    record.fields = {"query": text}
    entry = json.loads(JsonFormatter().format(record))
    assert "SECRET" not in json.dumps(entry)
    assert "S1" not in entry["message"] and "S2" not in entry["message"]
    assert (entry["message"], entry["query"]) == (logged, logged)
