"""Odd but legal HTTP, as an attacker sends it: every answer on the API is JSON with a request id,
odd input is a clear 4xx, nginx (not gunicorn) refuses what is too large, and ids are canonical."""

import json
from urllib.parse import urlsplit

import pytest

from tests.e2e.helpers import HSTS, json_lines, raw_https
from tests.stack import wait_until

LONG = "x" * 9_000  # beyond nginx's 8 KB line (large_client_header_buffers 4 8k)


def request_bytes(stack, method, target, *headers):
    host = urlsplit(stack.base_url).netloc
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", *headers, "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def assert_json_error(status, headers, body, expected_status):
    expected = expected_status if isinstance(expected_status, set) else {expected_status}
    assert status in expected, body[:300]
    assert headers.get("content-type", "").startswith("application/json"), (headers, body[:300])
    error = json.loads(body)
    assert {"error", "message", "request_id"} <= error.keys(), error
    assert error["request_id"] == headers["x-request-id"]
    return error


@pytest.mark.parametrize(
    "method,target,headers,status",
    [
        pytest.param("GET", "/api/posts/%00", (), 400, id="nul"),
        pytest.param("GET", "/api/posts/.x", (), 404, id="dotfile"),
        pytest.param("TRACE", "/api/posts", (), 405, id="trace"),
        # nginx 1.22 calls CONNECT malformed (400), later versions not allowed (405).
        pytest.param("CONNECT", "localhost:443", (), {400, 405}, id="connect"),
        pytest.param("GET", "/api/posts", ("Host: evil.example",), 421, id="unknown-host"),
        pytest.param("GET", f"/api/posts?q={LONG}", (), 414, id="long-line"),
        pytest.param("GET", "/api/posts", (f"X-Long: {LONG}",), 431, id="long-header"),
        pytest.param(
            "GET", "/api/posts", tuple(f"X-Many-{i}: {'y' * 4000}" for i in range(10)), 431,
            id="big-headers",
        ),
    ],
)  # fmt: skip
def test_errors_nginx_answers_itself_are_json(stack, method, target, headers, status):
    request = request_bytes(stack, method, target, *headers)
    if headers and headers[0].startswith("Host:"):
        request = request.replace(f"Host: {urlsplit(stack.base_url).netloc}\r\n".encode(), b"")
    assert_json_error(*raw_https(stack, request), status)


def test_framework_redirect_is_json_and_names_the_public_url(stack, client):
    response = client.get(stack.base_url + "/api//posts?limit=1", allow_redirects=False)
    assert response.status_code == 308
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["Location"] == stack.base_url + "/api/posts?limit=1"
    assert response.json()["location"] == response.headers["Location"]


def test_bodiless_answers_are_not_labelled_html(stack, client, writer):
    created = writer.post(stack.base_url + "/api/posts", json={"title": "gone", "body": "soon"})
    deleted = writer.delete(stack.base_url + created.headers["Location"])
    options = client.options(stack.base_url + "/api/posts")
    for response in (deleted, options):
        assert response.status_code == 204
        assert "Content-Type" not in response.headers, response.headers


def test_what_gunicorn_would_refuse_never_reaches_it(stack, client):
    # gunicorn's defaults: 4,094-byte request line, 100 header fields. nginx's are the ones that
    # apply: these pass nginx, so the backend must answer them.
    long_query = client.get(stack.base_url + "/api/posts", params={"q": "y" * 6_000})
    assert long_query.status_code == 200, long_query.text[:300]
    many = {f"X-Header-{i}": "z" for i in range(150)}
    assert client.get(stack.base_url + "/api/posts", headers=many).status_code == 200


def test_scheme_headers_from_the_client_do_not_reach_gunicorn(stack, client):
    # Natively gunicorn trusted 127.0.0.1 (nginx) and answered these with an HTML 400.
    contradictory = {"X-Forwarded-Ssl": "on", "X-Forwarded-Protocol": "ssl", "X-Url-Scheme": "http"}
    response = client.get(stack.base_url + "/api/posts", headers=contradictory)
    assert response.status_code == 200, response.text[:300]


@pytest.mark.parametrize(
    "title", ["\u200b", "\ufeff", "\u2060", "\u3164", "\ufe0f", "a\x00b", "a\x01b"], ids=repr
)
def test_title_without_visible_text_or_with_controls_is_422(stack, writer, title):
    response = writer.post(stack.base_url + "/api/posts", json={"title": title, "body": "b"})
    assert response.status_code == 422
    assert response.json()["field"] == "title"


# As a JSON escape or as the (invalid UTF-8) bytes of one: either way the field is refused.
@pytest.mark.parametrize("body", [rb'"\ud800"', rb'"\udc00\ud800"', b'"\xed\xa0\x80"'])
def test_lone_surrogates_are_4xx_not_500(stack, writer, body):
    data = b'{"title": "t", "body": ' + body + b"}"
    response = writer.post(
        stack.base_url + "/api/posts", data=data, headers={"Content-Type": "application/json"}
    )
    answer = response.json()
    assert (response.status_code, answer["error"], answer["field"]) == (
        422,
        "validation_failed",
        "body",
    ), response.text


@pytest.mark.parametrize(
    "post_id", ["%EF%BC%91", "%D9%A1", "%E0%A5%A7", "0000000001", "01", "+1"], ids=repr
)
def test_only_the_canonical_id_reaches_a_post(stack, client, writer, post_id):
    post = writer.post(stack.base_url + "/api/posts", json={"title": "id", "body": "b"}).json()
    response = client.get(stack.base_url + f"/api/posts/{post_id}")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    # A write aimed at another spelling of an id changes nothing.
    assert writer.delete(stack.base_url + f"/api/posts/{post_id}").status_code == 404
    assert client.get(stack.base_url + f"/api/posts/{post['id']}").status_code == 200


@pytest.mark.parametrize("separator", ["%2F", "%2f"])
def test_encoded_slash_is_not_a_path_separator(stack, client, writer, separator):
    post = writer.post(stack.base_url + "/api/posts", json={"title": "slash", "body": "b"}).json()
    url = stack.base_url + f"/api/posts{separator}{post['id']}"
    response = client.get(url)
    assert response.status_code == 404, response.text
    assert response.json()["error"] == "not_found"
    assert writer.put(url, json={"title": "changed", "body": "b"}).status_code == 404
    assert client.get(stack.base_url + f"/api/posts/{post['id']}").json() == post


def test_every_log_line_stays_one_utf8_json_object_whatever_the_client_sends(stack, client):
    path = client.get(stack.base_url + "/search/%C3%85ngstr%C3%B6m")
    agent = client.get(stack.base_url + "/api/posts", headers={"User-Agent": "x\x85y"})
    referer = raw_https(stack, request_bytes(stack, "GET", "/api/posts", "Referer: \xe9\x85"))
    # Raw bytes in the URI: nginx refuses them (in JSON) before gunicorn would (in HTML).
    raw = raw_https(stack, request_bytes(stack, "GET", "/raw\x85\xff"))
    assert_json_error(*raw, 400)
    reached_backend = [
        path.headers["X-Request-ID"],
        agent.headers["X-Request-ID"],
        referer[1]["x-request-id"],
    ]
    expected = {"proxy": [*reached_backend, raw[1]["x-request-id"]], "backend": reached_backend}

    def lines_of(service):
        # Lines end at "\n" only; the request ids pick this test's requests.
        lines = stack.logs(service).split("\n")
        return [line for line in lines if any(rid in line for rid in expected[service])]

    for service in ("proxy", "backend"):
        lines = wait_until(
            lambda service=service: (
                len(lines_of(service)) >= len(expected[service]) and lines_of(service)
            ),
            10,
            f"the {service}'s lines of the requests",
        )
        for line in lines:
            # U+FFFD here means a byte that was not UTF-8 (the logs are read with "replace").
            assert "\ufffd" not in line, f"{service} wrote bytes that are not UTF-8: {line!r}"
            assert isinstance(json.loads(line), dict), (service, line)
    backend = json_lines("\n".join(lines_of("backend")))
    assert any(entry.get("path") == "/search/Ångström" for entry in backend), backend


def test_hsts_only_over_https_with_the_configurations_value(stack, client):
    redirect = client.get(stack.http_url + "/api/posts", allow_redirects=False)
    assert redirect.status_code == 308
    assert "Strict-Transport-Security" not in redirect.headers
    served = client.get(stack.base_url + "/api/posts")
    assert served.headers["Strict-Transport-Security"] == HSTS[stack.configuration]
