"""Static tier: the pre-commit hooks run what `make lint` runs, on the same files, and pass."""

import os
import re
import shlex
import shutil
import subprocess

import pytest
import yaml
from identify import identify

from tests.stack.compose import ROOT
from tests.static.tree import repository_files

# The promise: both run ruff check, ruff format --check, hadolint, shellcheck and pytest (the
# compose policy), each from the venv, with these options.
LINT_TOOLS = {
    (".venv/bin/ruff", "check"),
    (".venv/bin/ruff", "format", "--check"),
    (".venv/bin/hadolint",),
    (".venv/bin/shellcheck",),
    (".venv/bin/python", "-m", "pytest"),
}


def make_lint_commands(makefile="Makefile"):
    """argv of each command `make lint` runs, as make prints them without running them (-n);
    the venv is taken as it is (-o)."""
    printed = subprocess.run(
        ["make", "--no-print-directory", "-f", makefile, "-n", "-o", ".venv/.installed", "lint"],
        cwd=ROOT,
        env={**os.environ, "VENV": ".venv"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return [shlex.split(line) for line in printed.splitlines() if line.strip()]


def hooks():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    (repo,) = config["repos"]
    assert repo["repo"] == "local", "hooks are fetched from nowhere: the machines reach no Git host"
    return {hook["id"]: hook for hook in repo["hooks"]}


def tool(argv):
    """The program and its options: ARGV without the files and directories it names."""
    return (argv[0], *(arg for arg in argv[1:] if not (ROOT / arg).exists()))


def paths(argv):
    return {arg for arg in argv[1:] if (ROOT / arg).exists()}


def selected(hook, files):
    """The files pre-commit hands HOOK (its `files` pattern and identify's type tags)."""
    pattern = re.compile(hook.get("files", ""))
    chosen = set()
    for path in files:
        tags = identify.tags_from_path(str(ROOT / path))
        if not pattern.search(path) or not set(hook.get("types", [])) <= tags:
            continue
        if hook.get("types_or") and not tags & set(hook["types_or"]):
            continue
        chosen.add(path)
    return chosen


def test_pre_commit_hooks_run_the_lint_commands():
    assert {tool(shlex.split(hook["entry"])) for hook in hooks().values()} == LINT_TOOLS
    assert {tool(argv) for argv in make_lint_commands()} == LINT_TOOLS


def test_lint_tool_drift_is_caught(tmp_path):
    # Control for the test above: a `make lint` without shellcheck differs from the promise.
    makefile = tmp_path / "Makefile"
    text = (ROOT / "Makefile").read_text()
    makefile.write_text(re.sub(r"(?m)^\t.*shellcheck.*\n", "", text))
    tools = {tool(argv) for argv in make_lint_commands(makefile)}
    assert LINT_TOOLS - tools == {(".venv/bin/shellcheck",)}


def test_pre_commit_and_make_lint_check_the_same_scripts_and_dockerfiles():
    files = repository_files()
    by_program = {argv[0]: argv for argv in make_lint_commands()}
    shell_scripts = selected(hooks()["shellcheck"], files)
    # Every script of scripts/, db/initdb.d/ and .ci/, whatever its name.
    assert {".ci/run", "scripts/install-deps.sh", "db/initdb.d/10-create-accounts.sh"} <= (
        shell_scripts
    )
    assert paths(by_program[".venv/bin/shellcheck"]) == shell_scripts
    dockerfiles = selected(hooks()["hadolint"], files)
    assert dockerfiles == {"backend/Dockerfile", "proxy/Dockerfile"}
    assert paths(by_program[".venv/bin/hadolint"]) == dockerfiles


def test_compose_policy_hook_runs_when_a_compose_file_changes():
    hook = hooks()["compose-policy"]
    assert hook["pass_filenames"] is False
    assert selected(hook, ["compose.yaml", "compose.prod.yaml", ".env.example"]) == {
        "compose.yaml",
        "compose.prod.yaml",
        ".env.example",
    }
    # Control: a change elsewhere does not run it.
    assert selected(hook, ["README.md", "backend/app/routes.py"]) == set()


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="pre-commit needs a git checkout")
def test_pre_commit_passes_on_the_whole_tree_offline(tmp_path):
    pre_commit = ROOT / ".venv" / "bin" / "pre-commit"
    assert pre_commit.exists() or shutil.which("pre-commit"), "make venv installs pre-commit"
    result = subprocess.run(
        [pre_commit, "run", "--all-files", "--color=never"],
        cwd=ROOT,
        # Its own cache, not the developer's; no hook environment is ever built or fetched.
        env={**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Each hook ran on something: none "(no files to check)Skipped".
    verdicts = re.findall(r"^(.+?)\.{3,}(?:\(no files to check\))?(\w+)$", result.stdout, re.M)
    assert {name: verdict for name, verdict in verdicts} == {
        hook["name"]: "Passed" for hook in hooks().values()
    }
