"""The checkout's own files, for static tests that look across the whole tree."""

import subprocess

from tests.stack.compose import ROOT


def repository_files():
    """Tracked files and untracked ones that are not ignored: what a commit could hold."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return [path for path in listed.splitlines() if (ROOT / path).is_file()]
