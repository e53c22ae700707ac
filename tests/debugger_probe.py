"""Is Werkzeug's interactive debugger reachable? One probe for every tier that asks.

`flask run --debug` (the dev target's command) wraps the app in werkzeug's DebuggedApplication,
which answers its own URLs before the app sees them: `?__debugger__=yes&cmd=resource&f=...` on any
path serves the debugger's files, and /console an interactive Python console behind a PIN prompt.
tests/backend/test_debugger.py shows the probe finds it there; the e2e and container tests show
the production stack has none.
"""

# Each path alone gives the debugger away.
PROBES = (
    "/?__debugger__=yes&cmd=resource&f=debugger.js",
    "/console",
)
# Text of the debugger's own pages and script (werkzeug/debug/tbtools.py, shared/debugger.js).
PAGE_SIGNS = (
    "Werkzeug Debugger",
    "Werkzeug powered traceback interpreter",
    "Console Locked",
    "initPinBox",
    "EVALEX_TRUSTED",
)
# What the debugger prints when it starts (the PIN unlocks the console).
LOG_SIGNS = ("Debugger is active", "Debugger PIN")


def signs_in(text, signs=PAGE_SIGNS):
    return [sign for sign in signs if sign in text]


def debugger_evidence(get):
    """Probe path -> the debugger's signs in the answer; GET(path) returns the body as text.

    All lists empty: no debugger answered.
    """
    return {path: signs_in(get(path)) for path in PROBES}
