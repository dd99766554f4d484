"""Opening the record store without carrying Alembic: a database at the newest revision is
opened without importing it, and ``reconciler run`` migrates in a child process (the URL on
its stdin, never on its command line); on SQLite and a real PostgreSQL.

Which modules a process imported is looked at in a new Python process, since this one has
long imported Alembic for other tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from reconciler.shell import records
from reconciler.shell.ports import free_port
from reconciler.shell.records import database, migrate, revision, store
from tests.shell import legacy_records

PASSWORD = "s3cret-in-url"


def with_password(url: str) -> str:
    """``url`` with a password: the test server trusts its user, so any password passes, and
    it must then never show."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return url
    return parsed.set(password=PASSWORD).render_as_string(hide_password=False)


def run_python(code: str, *args: str, env: dict[str, str]) -> Any:
    """Run ``code`` in a new Python process; what it printed last, as JSON."""
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def set_revision(url: str, version_num: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = :v"),
                         {"v": version_num})
    finally:
        engine.dispose()


def test_the_head_constant_is_the_head_of_the_migrations() -> None:
    """A new migration must bump ``revision.HEAD``, or stores would open at the old one."""
    assert migrate.head() == revision.HEAD


OPEN_UP_TO_DATE = """
import json, os, sys
from reconciler.shell import records
store = records.RecordStore(os.environ["STORE_URL"])
print(json.dumps({"version": store.schema_version(),
                  "alembic": sorted(m for m in sys.modules if m.split(".")[0] == "alembic")}))
store.close()
"""


def test_opening_a_database_at_the_newest_revision_imports_no_alembic(store_url: str) -> None:
    records.RecordStore(store_url).close()  # migrated here, by this process

    opened = run_python(OPEN_UP_TO_DATE, env={**os.environ, "STORE_URL": store_url})
    assert opened == {"version": revision.HEAD, "alembic": []}


# What ``reconciler run`` does up to serving: import its command and the web app, then build
# the controller (with its store) from settings read from the environment. An audit hook
# sees the command line of every process it starts.
RUN_OPENS = """
import json, sys
started = []
def audit(event, args):
    if event == "subprocess.Popen":
        started.append([str(arg) for arg in args[1]])
sys.addaudithook(audit)
import reconciler.cli.run
from reconciler.web import app
from reconciler.shell import config, records, wiring
def seen(**found):
    alembic = sorted(m for m in sys.modules if m.split(".")[0] == "alembic")
    print(json.dumps({**found, "started": started, "alembic": alembic}))
try:
    controller = wiring.build(config.load(), marathon_url=sys.argv[1])
except records.StoreUnavailable as e:
    seen(refused=str(e))
    sys.exit()
try:
    seen(version=controller.records.schema_version())
finally:
    controller.records.close()
    controller.client.close()
"""


def run_opening(url: str, *, state_dir: Path) -> Any:
    """What ``reconciler run`` on the database at ``url`` saw (nothing listens at its
    Marathon: building the controller does not call it)."""
    return run_python(RUN_OPENS, f"http://127.0.0.1:{free_port()}",
                      env={**os.environ, "RECONCILER_STATE_DIR": str(state_dir),
                           "RECONCILER_DATABASE_URL": url})


def test_reconciler_run_migrates_a_new_database_in_a_child_given_the_url_on_stdin(
    store_url: str, tmp_path: Path
) -> None:
    url = with_password(store_url)

    opened = run_opening(url, state_dir=tmp_path / "run")

    assert opened["version"] == revision.HEAD
    assert opened["alembic"] == []
    migrating = [argv for argv in opened["started"] if records.store.MIGRATE_MODULE in argv]
    assert migrating == [[sys.executable, "-m", records.store.MIGRATE_MODULE]]
    for argv in opened["started"]:
        assert url not in " ".join(argv) and PASSWORD not in " ".join(argv)


def test_reconciler_run_opens_a_database_at_the_newest_revision_without_a_child(
    store_url: str, tmp_path: Path
) -> None:
    records.RecordStore(store_url).close()

    opened = run_opening(store_url, state_dir=tmp_path / "run")

    assert (opened["version"], opened["alembic"]) == (revision.HEAD, [])
    assert not [argv for argv in opened["started"] if records.store.MIGRATE_MODULE in argv]


def test_a_database_from_before_alembic_is_adopted_by_the_child(store_url: str) -> None:
    legacy_records.create(store_url, version=2)

    store = records.RecordStore(store_url, migrate_in_child=True)
    try:
        assert store.schema_version() == revision.HEAD
        assert [run.trigger for run in store.runs()] == ["poll"]
    finally:
        store.close()


@pytest.mark.parametrize("in_child", [False, True], ids=["in-process", "in-a-child"])
def test_a_database_at_a_revision_this_reconciler_does_not_know_is_refused_either_way(
    store_url: str, in_child: bool
) -> None:
    """A newer reconciler migrated it: not taken for up to date, and the reason reaches the
    caller with the password hidden."""
    records.RecordStore(store_url).close()
    set_revision(store_url, "ffff")

    with pytest.raises(records.StoreUnavailable, match="schema version ffff, unknown to this "
                                                       "reconciler .*: upgrade reconciler") as e:
        records.RecordStore(with_password(store_url), migrate_in_child=in_child)
    assert PASSWORD not in str(e.value)


def test_reconciler_run_refuses_a_database_of_a_newer_reconciler(
    store_url: str, tmp_path: Path
) -> None:
    records.RecordStore(store_url).close()
    set_revision(store_url, "ffff")

    refused = run_opening(with_password(store_url), state_dir=tmp_path / "run")

    assert "schema version ffff, unknown to this reconciler" in refused["refused"]
    assert PASSWORD not in refused["refused"]
    assert refused["alembic"] == []


def test_an_unreachable_database_is_refused_without_its_password() -> None:
    url = f"postgresql+psycopg://reconciler:{PASSWORD}@127.0.0.1:{free_port()}/records"

    with pytest.raises(records.StoreUnavailable, match="cannot open the record store") as e:
        records.RecordStore(url, migrate_in_child=True)
    assert PASSWORD not in str(e.value)
    assert "reconciler:***@127.0.0.1" in str(e.value)


def test_a_crash_of_the_migrating_process_is_store_unavailable_without_the_password(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the child last said is shown, with the password it was given hidden: here a
    stand-in for Python that quotes the URL it read from stdin, then fails."""
    python = tmp_path / "python"
    python.write_text('#!/bin/sh\nread url\necho "Traceback ... for $url" >&2\nexit 1\n')
    python.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(python))

    with pytest.raises(records.StoreUnavailable, match="its migrating process failed: "
                                                       "Traceback ... for ") as e:
        records.RecordStore(with_password(store_url), migrate_in_child=True)
    assert PASSWORD not in str(e.value)


def test_a_database_in_memory_is_migrated_in_this_process_even_when_asked_for_a_child() -> None:
    # A child would migrate a memory database of its own and leave this one empty.
    store = records.RecordStore("sqlite://", migrate_in_child=True)
    try:
        assert store.schema_version() == revision.HEAD
        store.record_revision(revision="r1", definitions={})
        assert [r.revision for r in store.revisions()] == ["r1"]
    finally:
        store.close()


def test_the_password_is_hidden_as_typed_and_as_a_url_spells_it() -> None:
    # The child may quote the URL (p%40ss%2Fx) or the password itself (p@ss/x).
    db = database.Database("postgresql+psycopg://u:p%40ss%2Fx@127.0.0.1:1/db", clock=time.time)
    try:
        shown = db.mask("failed: postgresql+psycopg://u:p%40ss%2Fx@127.0.0.1:1/db with p@ss/x")
    finally:
        db.close()
    assert shown == "failed: postgresql+psycopg://u:***@127.0.0.1:1/db with ***"


def test_a_migrating_process_that_never_ends_is_stopped_and_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python = tmp_path / "python"  # a stand-in for Python that waits forever on a lock
    python.write_text("#!/bin/sh\nread url\nexec sleep 600\n")
    python.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(python))
    monkeypatch.setattr(store, "MIGRATE_TIMEOUT", 0.5)

    with pytest.raises(records.StoreUnavailable, match="still at it after 0.5 s"):
        records.RecordStore(f"sqlite:///{tmp_path / 'records.db'}", migrate_in_child=True)


def test_each_sqlite_connection_keeps_a_small_page_cache(tmp_path: Path) -> None:
    # SQLite's default is 2 MB per connection; the pool keeps several, and a release of
    # 10,000 apps fills each (the 200 MB resident target of docs/benchmarks.md).
    opened = records.open_store(tmp_path)
    try:
        engine = opened._db.engine  # noqa: SLF001 - the pool itself is what is checked
        with engine.connect() as one, engine.connect() as two:
            for connection in (one, two):
                size = connection.exec_driver_sql("PRAGMA cache_size").scalar()
                assert size == -database.SQLITE_CACHE_KIB
    finally:
        opened.close()
