"""The store every reconciler test builds snapshots from (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from portway.store import Store, open_store
from portway.store.keyring import Keyring


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    # A keyring so certificate keys can be sealed; the other tests never notice it.
    s = open_store(store_url, Keyring.generate())
    yield s
    s.close()
