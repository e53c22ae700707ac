"""Container healthcheck (stdlib only: the slim image has neither curl nor wget).

GET http://127.0.0.1:<port of GUNICORN_BIND>/healthz; exit 0 when it answers 200, else 1.
"""

import sys
import urllib.request

import listen

url = f"http://127.0.0.1:{listen.port()}/healthz"

try:
    with urllib.request.urlopen(url, timeout=2) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as exc:  # any failure means unhealthy
    print(f"healthcheck: {url} failed: {exc}", file=sys.stderr)
    sys.exit(1)
