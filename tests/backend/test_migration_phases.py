"""Migrations declare their phase (docs/deploy.md, "Schema changes: expand, then contract").

Expand migrations only add, so the release before keeps working while and after they run; the
migrate service runs them before any replica changes. Contract migrations drop, rename or narrow
what no running code uses any more, and run only at `make migrate-contract`. As OpenStack
Neutron's test_branches does, the check reads what each migration sends to MariaDB: the SQL it
renders, raw `op.execute` included. tests/releases/ holds the next release's migrations
(a column renamed over two releases) and migrations in the wrong phase.
"""

import importlib.util
import io
import re
import shutil
from pathlib import Path

import pytest
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from app import create_app
from app.config import Config
from native.mariadb import MariaDB

from .conftest import BACKEND, REPO, connect, db_env, run_migrate

RELEASES = REPO / "tests" / "releases"
NEXT_RELEASE = RELEASES / "next" / "versions"
PHASES = ("expand", "contract")
# What the running release could not live with, in one statement of an expand migration.
EXPAND_REFUSES = {
    "drops": r"\bDROP\b",
    "renames": r"\bRENAME\b|\bCHANGE\b",
    "changes a column's type or nullability": r"\bMODIFY\b",
    "deletes rows": r"^(DELETE|TRUNCATE)\b",
    "adds a constraint that existing writes may break": (
        r"^ALTER TABLE .*\bADD (CONSTRAINT|UNIQUE|FOREIGN KEY|PRIMARY KEY)\b|^CREATE UNIQUE INDEX\b"
    ),
    "adds a NOT NULL column without a default": (
        r"^(?=.*\bADD COLUMN\b)(?=.*\bNOT NULL\b)(?!.*\bDEFAULT\b)"
    ),
}
# What belongs to an expand migration, in one statement of a contract migration.
CONTRACT_REFUSES = {
    "creates a table": r"^CREATE TABLE\b",
    "adds a column": r"\bADD COLUMN\b",
}


def rendered_sql(path):
    """The statements the migration at PATH sends to MariaDB, one line each, upper case."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    output = io.StringIO()
    context = MigrationContext.configure(
        dialect_name="mariadb",
        opts={"as_sql": True, "output_buffer": output, "literal_binds": True},
    )
    with Operations.context(context):
        module.upgrade()
    return [" ".join(s.split()).upper() for s in output.getvalue().split(";") if s.strip()]


def phase_violations(path, phase):
    """What the migration at PATH does that its PHASE forbids, one message each."""
    rules = EXPAND_REFUSES if phase == "expand" else CONTRACT_REFUSES
    return [
        f"{path.name}: a {phase} migration that {what}: {statement}"
        for statement in rendered_sql(path)
        for what, pattern in rules.items()
        if re.search(pattern, statement)
    ]


def script_directory(*extra_versions):
    """This code's migrations, plus those of another release under EXTRA_VERSIONS."""
    versions = [BACKEND / "migrations" / "versions", *extra_versions]
    return ScriptDirectory(
        str(BACKEND / "migrations"),
        version_locations=[str(v) for v in versions],
        recursive_version_locations=True,
    )


def phased_revisions():
    """(revision, its phase) of every migration after the branch point, this release's and the
    next one's: (revision, None) for one in neither branch."""
    script = script_directory(NEXT_RELEASE)
    before_phases = {r.revision for r in script.walk_revisions("base", "0003")}
    for rev in script.walk_revisions():
        if rev.revision not in before_phases:
            labels = set(PHASES) & set(rev.branch_labels)
            yield rev, labels.pop() if len(labels) == 1 else None


@pytest.mark.parametrize("rev", [r for r, _ in phased_revisions()], ids=lambda r: r.revision)
def test_each_migration_is_in_one_phase_and_in_that_phases_directory(rev):
    phase = dict((r.revision, p) for r, p in phased_revisions())[rev.revision]
    assert phase in PHASES, f"{rev.path}: neither on the expand nor on the contract branch"
    assert Path(rev.path).parent.name == phase, f"{rev.path}: a {phase} migration elsewhere"


@pytest.mark.parametrize(
    ("path", "phase"),
    [(Path(r.path), p) for r, p in phased_revisions()],
    ids=lambda v: v.name if isinstance(v, Path) else v,
)
def test_expand_migrations_only_add_and_contract_migrations_only_remove(path, phase):
    assert phase_violations(path, phase) == []


BAD_MIGRATIONS = {
    "expand_drops_a_column": "drops",
    "expand_drops_by_raw_sql": "drops",
    "expand_renames_a_column": "renames",
    "expand_narrows_a_column": "changes a column's type or nullability",
    "expand_adds_a_required_column": "adds a NOT NULL column without a default",
    "expand_adds_a_unique_constraint": "adds a constraint that existing writes may break",
    "contract_adds_a_column": "adds a column",
    "contract_creates_a_table": "creates a table",
}


@pytest.mark.parametrize(("name", "reason"), BAD_MIGRATIONS.items())
def test_the_phase_check_refuses_a_migration_in_the_wrong_phase(name, reason):
    path = RELEASES / "bad" / f"{name}.py"
    violations = phase_violations(path, name.split("_")[0])
    assert any(f"that {reason}:" in v for v in violations), violations


def test_every_bad_migration_is_checked():
    assert {p.stem for p in (RELEASES / "bad").glob("*.py")} == set(BAD_MIGRATIONS)


# --- a column renamed over two releases, on a real database ----------------------------------
@pytest.fixture(scope="module")
def release_db(tmp_path_factory, secrets_dir):
    """A database of its own: the releases below take it through their migrations."""
    db = MariaDB(tmp_path_factory.mktemp("release-db"), secrets_dir)
    db.start(timeout=60)
    yield db
    db.stop()


@pytest.fixture(scope="module")
def next_release(tmp_path_factory):
    """The next release's backend: this one plus its two migrations."""
    backend = tmp_path_factory.mktemp("next-release") / "backend"
    shutil.copytree(BACKEND, backend, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(NEXT_RELEASE, backend / "migrations" / "versions", dirs_exist_ok=True)
    return backend


def migrate(env, *args, backend=BACKEND):
    result = run_migrate(env, *args, backend=backend)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def schema(env):
    conn = connect(env)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT version_num FROM alembic_version")
            versions = sorted(v for (v,) in cur.fetchall())
            cur.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'posts'"
            )
            return versions, {c for (c,) in cur.fetchall()}
    finally:
        conn.close()


def posts_content(env):
    conn = connect(env)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT title, content FROM posts ORDER BY id")
            return cur.fetchall()
    finally:
        conn.close()


def test_heads_name_the_schema_each_release_needs(next_release):
    assert migrate({}, "--heads").strip() == "0004,0005"
    assert migrate({}, "--heads", backend=next_release).strip() == "0006,0007"


def test_revisions_name_every_schema_a_release_can_restore(next_release):
    assert migrate({}, "--revisions").strip() == "0001,0002,0003,0004,0005"
    assert migrate({}, "--revisions", backend=next_release).strip() == (
        "0001,0002,0003,0004,0005,0006,0007"
    )


def test_a_column_renamed_over_two_releases_keeps_every_post_and_the_release_before_working(
    release_db, secrets_dir, next_release, write_token
):
    migrator = db_env(release_db, secrets_dir, "migrator")
    # This release, as the migrate service starts it: the expand branch, not the contract one.
    logged = migrate(migrator)
    assert schema(migrator) == (["0004"], {"id", "title", "body", "created_at", "updated_at"})
    assert "contract migrations wait for make migrate-contract: 0005" in logged
    app = create_app(
        Config.from_env(
            {
                **db_env(release_db, secrets_dir, "app"),
                "API_TOKENS_FILE": str(secrets_dir / "api_tokens"),
            }
        )
    )
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {write_token}"
    try:
        assert client.post("/api/posts", json={"title": "before", "body": "b1"}).status_code == 201

        # The next release's expand step, while this release serves.
        migrate(migrator, backend=next_release)
        versions, columns = schema(migrator)
        assert (versions, "content" in columns, "body" in columns) == (["0006"], True, True)
        assert posts_content(migrator) == (("before", "b1"),)

        # This release's migrate service, started again after a rollback: the schema is a later
        # release's expanded one, which this release works on, so there is nothing to do.
        ran = run_migrate(migrator)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert "from a later release (0006 unknown here)" in ran.stdout, ran.stdout
        assert schema(migrator)[0] == ["0006"]
        # Its contract step is the later release's to take.
        ran = run_migrate(migrator, "--contract")
        assert (ran.returncode, ran.stderr) == (1, ""), ran.stderr
        assert "refused: the database schema is at 0006, from a later release" in ran.stdout

        # This release, the one before the next, reads and writes on the expanded schema.
        created = client.post("/api/posts", json={"title": "during", "body": "b2"})
        assert created.status_code == 201, created.get_json()
        post = client.get(f"/api/posts/{created.get_json()['id']}").get_json()
        assert (post["title"], post["body"]) == ("during", "b2")
        listed = client.get("/api/posts").get_json()["posts"]
        assert [p["title"] for p in listed] == ["during", "before"]
        # The next release writes both columns.
        conn = connect(migrator, autocommit=True)
        with conn.cursor() as cur:
            cur.execute("INSERT INTO posts (title, body, content) VALUES ('next', 'b3', 'b3')")
        conn.close()
    finally:
        app.extensions["db_engine"].dispose()

    # Contract, once no replica of this release is left: the post it wrote during the overlap
    # gets its content too, and body goes.
    logged = migrate(migrator, "--contract", backend=next_release)
    assert "every migration of this code ran" in logged
    versions, columns = schema(migrator)
    # 0007 depends on 0006: alembic_version keeps 0007 alone.
    assert (versions, "body" in columns) == (["0007"], False)
    assert posts_content(migrator) == (("before", "b1"), ("during", "b2"), ("next", "b3"))
    # The release before does not work on a contracted schema, and its migrate says so.
    ran = run_migrate(migrator)
    assert (ran.returncode, ran.stderr) == (1, ""), ran.stderr
    assert "refused: the database schema is at 0007, from a later release" in ran.stdout
    assert "lacks posts.body, requires posts.content, which this code cannot" in ran.stdout
