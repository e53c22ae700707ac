"""Plain HTTP: a 308 to HTTPS that keeps path and query; the ACME challenge path stays HTTP."""

import pytest


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_http_redirects_to_https_keeping_path_and_query(stack, client, method):
    path = "/api/posts/7?limit=5&q=a%20b"
    response = client.request(method, stack.http_url + path, allow_redirects=False)
    assert response.status_code == 308  # 308 keeps the method: a POST stays a POST
    # The public HTTPS port, not nginx's internal one.
    assert response.headers["Location"] == stack.base_url + path


def test_redirect_target_answers_over_https(stack, client):
    response = client.get(stack.http_url + "/healthz")
    assert response.status_code == 200
    assert response.url == stack.base_url + "/healthz"
    assert [r.status_code for r in response.history] == [308]


def test_acme_challenge_is_not_redirected(stack, client):
    response = client.get(
        stack.http_url + "/.well-known/acme-challenge/no-such-token", allow_redirects=False
    )
    # Served from the webroot over plain HTTP: no token there, so 404, but never the redirect.
    assert response.status_code == 404
    assert "Location" not in response.headers
