"""Per-client write limit: a burst gets 429, writes pass again after the window, reads go on."""

import time

from tests.e2e.helpers import trip_write_limit, wait_until_writes_recover, write_limit


def test_write_burst_gets_429_then_writes_pass_again_and_reads_are_not_starved(stack, client):
    rate, burst = write_limit()
    accepted, limited = trip_write_limit(client, stack)
    try:
        assert 1 <= accepted <= burst + 1, f"{accepted} writes passed; burst is {burst}"
        assert limited.status_code == 429
        body = limited.json()
        assert body["error"] == "too_many_requests"
        assert body["request_id"] == limited.headers["X-Request-ID"]

        # Reads right after the 429s: the write limit does not count them, nor delay them.
        started = time.monotonic()
        reads = [client.get(stack.base_url + "/api/posts").status_code for _ in range(5)]
        assert reads == [200] * 5
        assert time.monotonic() - started < 2, "reads were slowed down instead of answered"
    finally:
        # The window: a write passes again after about 1/rate s (and the bucket then drains, so
        # the tests after this one are not starved).
        waited = wait_until_writes_recover(client, stack)
    assert waited < 5 / rate, f"writes passed again only after {waited:.1f} s"
