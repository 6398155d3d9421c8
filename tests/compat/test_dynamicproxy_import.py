"""Reading the old dynamicproxy's database: both spellings of its tables."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from portway.compat.dynamicproxy_import import OldMapping, read_database
from portway.errors import MalformedError


def test_flask_sqlalchemys_singular_tables_are_read_with_their_project_names(
    tmp_path: Path,
) -> None:
    path = tmp_path / "unicorn.db"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE project (id INTEGER PRIMARY KEY, name VARCHAR(256));
        CREATE TABLE route (id INTEGER PRIMARY KEY, domain VARCHAR(256), project_id INTEGER);
        CREATE TABLE backend (id INTEGER PRIMARY KEY, url VARCHAR(256), route_id INTEGER);
        INSERT INTO project VALUES (7, 'alpha');
        INSERT INTO route VALUES (3, 'a.example.org', 7), (4, 'empty.example.org', 8);
        INSERT INTO backend VALUES (1, 'http://10.0.0.1:80', 3), (2, 'http://10.0.0.2', 3);
        """
    )
    db.commit()
    db.close()
    assert read_database(f"sqlite:///{path}") == [
        OldMapping(
            project="alpha",
            domain="a.example.org",
            backends=("http://10.0.0.1:80", "http://10.0.0.2"),
            where="route row id=3",
        ),
        OldMapping(
            project="<unknown project_id 8>",
            domain="empty.example.org",
            backends=(),
            where="route row id=4",
        ),
    ]


def test_routes_with_a_project_column_need_no_projects_table(tmp_path: Path) -> None:
    path = tmp_path / "flat.db"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE routes (id INTEGER PRIMARY KEY, domain TEXT, project TEXT);
        CREATE TABLE backends (id INTEGER PRIMARY KEY, url TEXT, route_id INTEGER);
        INSERT INTO routes VALUES (1, 'b.example.org', 'beta');
        INSERT INTO backends VALUES (1, 'http://10.0.0.3:8080', 1);
        """
    )
    db.commit()
    db.close()
    [found] = read_database(f"sqlite:///{path}")
    assert (found.project, found.backends) == ("beta", ("http://10.0.0.3:8080",))


def test_an_unreadable_file_is_a_malformed_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(MalformedError, match="cannot read the dynamicproxy database"):
        read_database(f"sqlite:///{path}")


def test_the_old_database_is_read_from_an_sqlalchemy_url(store_url: str) -> None:
    """Over both dialects of the store fixture (an empty SQLite file or PostgreSQL
    database), as --database-url reads it."""
    import sqlalchemy as sa

    if store_url.startswith("sqlite:///"):
        Path(store_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        for statement in (
            "CREATE TABLE projects (id INTEGER PRIMARY KEY, name VARCHAR(256))",
            "CREATE TABLE routes (id INTEGER PRIMARY KEY, domain VARCHAR(256), project_id INTEGER)",
            "CREATE TABLE backends (id INTEGER PRIMARY KEY, url VARCHAR(256), route_id INTEGER)",
            "INSERT INTO projects VALUES (1, 'alpha')",
            "INSERT INTO routes VALUES (1, 'c.example.org', 1)",
            "INSERT INTO backends VALUES (1, 'http://10.0.0.4:80', 1)",
        ):
            conn.execute(sa.text(statement))
    engine.dispose()
    [found] = read_database(store_url)
    assert (found.project, found.domain, found.backends) == (
        "alpha",
        "c.example.org",
        ("http://10.0.0.4:80",),
    )
