"""python -m native up|down: what `make native-up` and `make native-down` run."""

import atexit
import contextlib
import json
import os
import sys

from native.stack import EXPECTED_PROGRAM, REPO, NativeStack


def main(argv: list[str]) -> int:
    usage = "usage: python -m native up|down"
    if len(argv) != 1 or argv[0] not in ("up", "down"):
        print(usage, file=sys.stderr)
        return 2
    # HTTP_PORT/HTTPS_PORT as make passes them from .env; empty means the default, as in compose.
    stack = NativeStack(
        REPO / ".run" / "native",
        int(os.environ.get("HTTP_PORT") or "8080"),
        int(os.environ.get("HTTPS_PORT") or "8443"),
    )
    if argv[0] == "down":
        running = stack.running_pids()
        stack.down()
        with contextlib.suppress(OSError):
            stack.run_dir.parent.rmdir()  # .run/, when nothing else lives there
        if running:
            print(f"native stack stopped ({', '.join(f'{s} {p}' for s, p in running.items())})")
        else:
            print("native stack: nothing was running")
        return 0
    running = stack.running_pids()
    if running and set(running) == set(EXPECTED_PROGRAM):
        try:
            state = json.loads((stack.run_dir / "stack.json").read_text())
        except (OSError, ValueError):
            state = {"base_url": stack.base_url, "ca_bundle": stack.ca_bundle}
        print(f"native stack already running: {state['base_url']}/  (CA: {state['ca_bundle']})")
        print("stop it with: make native-down")
        return 0
    if running:
        print(f"native stack only partly running ({running}): stopping it and starting again")
        stack.down()
    try:
        stack.up()
    except Exception as error:
        print(f"native stack failed to start: {error}", file=sys.stderr)
        return 1
    atexit.unregister(stack.down)  # leave it running
    print(f"native stack ready: {stack.base_url}/")
    print(f"  trust the development CA: {stack.ca_bundle}")
    print(f"  logs: {stack.log_dir}/   stop: make native-down")
    return 0


sys.exit(main(sys.argv[1:]))
