"""Metrics: the backend counts what comes through the proxy, and serves its metrics (like nginx
its stub_status) on internal listeners only: through the public site they answer 404."""

from pathlib import Path

import pytest
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from tests.stack import wait_until


def total(texts, name, **labels):
    """Sum of the samples NAME{LABELS} over every replica's metrics text."""
    return sum(
        sample.value
        for text in texts
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


ROUTE = {"method": "GET", "route": "/api/posts/<post_id>", "status": "4xx"}


def test_a_request_through_the_proxy_appears_in_the_backends_request_counter(stack, client):
    before = total(stack.backend_metrics(), "http_requests_total", **ROUTE)
    assert client.get(stack.base_url + "/api/posts/999999993").status_code == 404
    wait_until(
        lambda: total(stack.backend_metrics(), "http_requests_total", **ROUTE) == before + 1,
        10,
        "the backend's request counter to count the request once",
    )
    # The template, never the raw path: an id is no label.
    assert total(stack.backend_metrics(), "http_requests_total", route="/api/posts/999999993") == 0


@pytest.mark.parametrize("path", ["/metrics", "/stub_status", "/nginx-health"])
def test_internal_endpoints_answer_404_through_the_public_site(stack, client, path):
    response = client.get(stack.base_url + path)
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/json")


def test_metrics_and_stub_status_are_served_on_their_internal_listeners(stack):
    # Positive control of the 404s above: the same pages exist where the scrapers look.
    texts = stack.backend_metrics()
    assert len(texts) == stack.backend_replicas
    assert all("http_requests_total" in text for text in texts)
    assert stack.proxy_stub_status().startswith("Active connections:")


def test_backend_reports_ready_build_info_and_the_certificate_nginx_serves(stack):
    served = x509.load_pem_x509_certificate(
        (Path(stack.ca_bundle).parent / "server.crt").read_bytes()
    )
    expiry = served.not_valid_after_utc.timestamp()
    for text in stack.backend_metrics():
        assert total([text], "backend_ready") == 1
        assert total([text], "backend_build_info") == 1
        assert total([text], "tls_probe_success") == 1
        assert total([text], "tls_certificate_expiry_timestamp_seconds") == expiry
