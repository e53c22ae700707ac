"""Static tier: the pre-commit hooks, the one list of lint checks (`make lint` runs them on every
tracked file), select every file they promise to check."""

import re

import yaml
from identify import identify

from tests.stack.compose import ROOT
from tests.static.tree import repository_files


def hooks():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    (repo,) = config["repos"]
    assert repo["repo"] == "local", "hooks are fetched from nowhere: the machines reach no Git host"
    return {hook["id"]: hook for hook in repo["hooks"]}


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


def test_shellcheck_checks_every_script_whatever_its_name():
    files = repository_files()
    scripts = {path for path in files if path.endswith(".sh")} | {".ci/run"}
    assert selected(hooks()["shellcheck"], files) == scripts


def test_hadolint_checks_both_dockerfiles():
    assert selected(hooks()["hadolint"], repository_files()) == {
        "backend/Dockerfile",
        "proxy/Dockerfile",
    }


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
