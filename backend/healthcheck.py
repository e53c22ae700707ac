"""Container healthcheck (stdlib only: the slim image has neither curl nor wget).

GET http://127.0.0.1:<port of GUNICORN_BIND>/healthz; exit 0 when it answers 200, else 1.
"""

import os
import sys
import urllib.request

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000").split(",")[0].strip()
port = bind.rsplit(":", 1)[1] if ":" in bind else "8000"
url = f"http://127.0.0.1:{port}/healthz"

try:
    with urllib.request.urlopen(url, timeout=2) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as exc:  # any failure means unhealthy
    print(f"healthcheck: {url} failed: {exc}", file=sys.stderr)
    sys.exit(1)
