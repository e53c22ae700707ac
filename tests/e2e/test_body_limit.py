"""A body over the limit is refused by nginx (413) and never reaches the backend."""

import json
import uuid

from tests.e2e.helpers import log_entry


def test_oversized_body_gets_413_from_nginx_without_reaching_the_backend(stack, client):
    # nginx replaces any X-Request-ID we send, so a marker in the query string identifies the
    # request in both logs.
    marker = uuid.uuid4().hex
    response = client.post(
        stack.base_url + "/api/posts",
        params={"marker": marker},
        data=json.dumps({"title": "too big", "body": "x" * 1024 * 1024}),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    body = response.json()
    assert body["error"] == "payload_too_large"
    assert body["request_id"] == response.headers["X-Request-ID"]

    # nginx logged it (with no upstream) ...
    entry = log_entry(stack, "proxy", "the 413", request_id=body["request_id"])
    assert marker in entry["uri"]
    assert entry["status"] == 413
    assert entry["upstream_addr"] in ("", "-")
    # ... and the backend never heard of it. A request the backend does get shows up in its
    # log within the same wait (control), so the absence below is not a matter of timing.
    control = client.get(stack.base_url + "/api/posts", params={"marker": f"control-{marker}"})
    log_entry(stack, "backend", "the control request", request_id=control.headers["X-Request-ID"])
    assert marker not in stack.logs("backend").replace(f"control-{marker}", "")
