"""The HTTP client side of the tests: requests that leave from a chosen loopback address."""

from requests.adapters import HTTPAdapter


class SourceAddressAdapter(HTTPAdapter):
    """Connections from SOURCE_ADDRESS: another client as far as nginx's per-client limits and
    its logged client address are concerned (natively 127.0.0.2, not the proxy's 127.0.0.1)."""

    def __init__(self, source_address: str, **kwargs):
        self.source_address = source_address
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source_address, 0)
        return super().init_poolmanager(*args, **kwargs)

    def send(self, request, timeout=None, **kwargs):
        # No request may hang a test run: 10 s unless the test says otherwise.
        return super().send(request, timeout=timeout or 10, **kwargs)
