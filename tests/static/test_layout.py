"""Static tier: the tree says what is product. The native runtime, which the README offers users
(`make native-up`), is product: it runs no code from tests/."""

import subprocess
import sys

from tests.stack.compose import ROOT

# `python -m native` as make runs it (without arguments: its usage, after loading the runtime).
RUN_NATIVE = """
import runpy, sys
sys.argv = ["native"]
try:
    runpy.run_module("native", run_name="__main__")
except SystemExit:
    pass
"""
REPORT = "\nprint(sorted(name for name in sys.modules if name.partition('.')[0] == 'tests'))"


def modules_from_tests(code):
    """The modules of tests/ a fresh interpreter has loaded after running CODE."""
    printed = subprocess.run(
        [sys.executable, "-c", "import sys\n" + code + REPORT], cwd=ROOT,
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return printed.stdout.strip(), printed.stderr


def test_the_native_runtime_loads_nothing_from_tests():
    loaded, printed = modules_from_tests(RUN_NATIVE)
    assert "usage: python -m native up|down" in printed, printed
    assert loaded == "[]"
    # Control: a module of tests/ is seen when one is loaded.
    assert "'tests.stack'" in modules_from_tests("import tests.stack")[0]
