"""``portway import dynamicproxy`` against a running node: a real SQLite database with the
old schema (and a /mapping JSON file), imported through the service, read back through
the dynamicproxy API and routed by the data plane."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.harness import VENV_BIN, Backend, Portway, start_backend, wait_routed

BASE = "/dynamicproxy-api/v1"
OLD_SCHEMA = """
CREATE TABLE projects (id INTEGER PRIMARY KEY, name VARCHAR(256) UNIQUE);
CREATE TABLE routes (
    id INTEGER PRIMARY KEY,
    domain VARCHAR(256) UNIQUE,
    project_id INTEGER REFERENCES projects(id)
);
CREATE TABLE backends (
    id INTEGER PRIMARY KEY,
    url VARCHAR(256),
    route_id INTEGER REFERENCES routes(id)
);
"""


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Portway, Backend]]:
    pw = Portway(tmp_path_factory.mktemp("import") / "data")
    backend = start_backend("old")
    pw.start()
    try:
        zone = {"zone": {"name": "proxy.test", "shared": True}}
        assert pw.api("POST", "/v1/zones", json=zone).status_code == 201
        yield pw, backend
    finally:
        pw.stop()
        backend.stop()


def old_database(path: Path, routes: list[tuple[str, str, list[str]]]) -> Path:
    """The old dynamicproxy's tables with ``routes`` as (project, domain, backend URLs)."""
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    projects: dict[str, int] = {}
    for project, domain, urls in routes:
        if project not in projects:
            projects[project] = (
                db.execute("INSERT INTO projects (name) VALUES (?)", (project,)).lastrowid or 0
            )
        route = db.execute(
            "INSERT INTO routes (domain, project_id) VALUES (?, ?)", (domain, projects[project])
        ).lastrowid
        for url in urls:
            db.execute("INSERT INTO backends (url, route_id) VALUES (?, ?)", (url, route))
    db.commit()
    db.close()
    return path


def run_import(pw: Portway, *args: str) -> subprocess.CompletedProcess[str]:
    config = pw.data_dir.parent / "import.toml"
    config.write_text('backend_allow = ["127.0.0.0/8"]\n')
    command = [str(VENV_BIN / "portway"), "import", "dynamicproxy", "--config", str(config)]
    command += ["--data-dir", str(pw.data_dir), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def mappings(pw: Portway, project: str) -> Any:
    response = pw.api("GET", f"{BASE}/{project}/mapping")
    assert response.status_code == 200, response.text
    return response.json()


def test_the_old_database_is_imported_bad_rows_reported_and_a_rerun_changes_nothing(
    node: tuple[Portway, Backend], tmp_path: Path
) -> None:
    pw, backend = node
    port = backend.port
    db = old_database(
        tmp_path / "proxy.db",
        [
            ("alpha", "wiki.proxy.test", [f"http://127.0.0.1:{port}", "http://127.0.0.1:9/"]),
            ("alpha", "nodot", [f"http://127.0.0.1:{port}"]),
            ("beta", "api.proxy.test", [f"http://127.0.0.1:{port}"]),
            ("gamma", "ftp.proxy.test", ["ftp://127.0.0.1:21"]),
        ],
    )
    first = run_import(pw, "--sqlite", str(db))
    assert first.returncode == 1, first.stdout + first.stderr
    lines = first.stdout.splitlines()
    assert lines[0] == "create alpha wiki.proxy.test (2 backends)"
    assert lines[1] == "failed alpha nodot: Invalid domain (routes row id=2)"
    assert lines[2] == "create beta api.proxy.test (1 backends)"
    assert lines[3].startswith("failed gamma ftp.proxy.test: backends[0] 'ftp://127.0.0.1:21'")
    assert lines[3].endswith("(routes row id=4)")
    assert lines[4] == "4 mappings: 2 create, 2 failed"

    # The URLs read back exactly as the old system held them.
    [wiki] = mappings(pw, "alpha")["routes"]
    assert wiki["domain"] == "wiki.proxy.test"
    assert sorted(wiki["backends"]) == sorted([f"http://127.0.0.1:{port}", "http://127.0.0.1:9/"])
    assert mappings(pw, "beta")["routes"][0]["domain"] == "api.proxy.test"
    # A failed mapping leaves nothing: not even the project it would have needed.
    assert pw.api("GET", "/v1/projects/gamma").status_code == 404
    [change] = pw.api("GET", "/v1/beta/changes").json()["changes"][:1]
    assert change["actor"] == f"portway import dynamicproxy ({db})"
    wait_routed(pw, "api.proxy.test")

    again = run_import(pw, "--sqlite", str(db))
    assert again.returncode == 1
    assert again.stdout.splitlines()[0] == "unchanged alpha wiki.proxy.test (2 backends)"
    assert again.stdout.splitlines()[-1] == "4 mappings: 2 failed, 2 unchanged"
    assert len(pw.api("GET", "/v1/beta/changes").json()["changes"]) == 2  # project, proxy


def test_a_changed_old_mapping_is_updated_and_a_dry_run_writes_nothing(
    node: tuple[Portway, Backend], tmp_path: Path
) -> None:
    pw, backend = node
    one = f"http://127.0.0.1:{backend.port}"
    before = old_database(tmp_path / "before.db", [("delta", "d.proxy.test", [one])])
    assert run_import(pw, "--sqlite", str(before)).returncode == 0
    after = old_database(
        tmp_path / "after.db", [("delta", "d.proxy.test", ["http://127.0.0.1:9", one])]
    )
    dry = run_import(pw, "--sqlite", str(after), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        "would update delta d.proxy.test (2 backends)",
        "dry run: 1 mappings: 1 update",
    ]
    assert mappings(pw, "delta")["routes"][0]["backends"] == [one]
    wet = run_import(pw, "--sqlite", str(after))
    assert wet.stdout.splitlines()[0] == "update delta d.proxy.test (2 backends)"
    assert sorted(mappings(pw, "delta")["routes"][0]["backends"]) == sorted(
        ["http://127.0.0.1:9", one]
    )


def test_a_saved_mapping_output_is_imported_into_the_named_project(
    node: tuple[Portway, Backend], tmp_path: Path
) -> None:
    pw, backend = node
    saved = {
        "routes": [
            {"domain": "json.proxy.test", "backends": [f"http://127.0.0.1:{backend.port}"]},
            {"domain": "json.proxy.test.", "backends": "not a list"},
        ]
    }
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps(saved))
    result = run_import(pw, "--mapping-json", str(path), "--project", "epsilon")
    assert result.returncode == 1
    assert result.stdout.splitlines()[:2] == [
        "create epsilon json.proxy.test (1 backends)",
        "failed epsilon json.proxy.test.: backends must be a list of URLs (routes[1])",
    ]
    assert mappings(pw, "epsilon") == {"routes": [saved["routes"][0]]}
    wait_routed(pw, "json.proxy.test")


def test_no_source_or_two_is_a_usage_error(node: tuple[Portway, Backend], tmp_path: Path) -> None:
    pw, _ = node
    result = run_import(pw)
    assert result.returncode == 2
    assert "give exactly one of --sqlite, --database-url, --mapping-json" in result.stderr


def test_a_database_without_the_old_tables_is_one_line(
    node: tuple[Portway, Backend], tmp_path: Path
) -> None:
    pw, _ = node
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE things (id INTEGER)").connection.close()
    result = run_import(pw, "--sqlite", str(other))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "portway: not a dynamicproxy database: no routes and backends tables (found: things)"
    )
