"""One real Keystone for the session (its start-up is the expensive part)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from tests.auth.keystone_server import Keystone, start_keystone


@pytest.fixture(scope="session")
def keystone() -> Iterator[Keystone]:
    root = Path(tempfile.mkdtemp(prefix="portway-keystone-"))
    try:
        server = start_keystone(root)
        timings = ", ".join(f"{k} {v:.1f} s" for k, v in server.timings.items())
        print(f"keystone start-up: {timings}")
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def session_for(keystone: Keystone, user: str, project: str) -> ks_session.Session:
    """What the OpenStack clients (Horizon's proxy panel, the openstack CLI) do."""
    auth = v3.Password(
        auth_url=f"{keystone.url}/v3",
        username=user,
        password=f"{user}-pw",
        user_domain_name="Default",
        project_name=project,
        project_domain_name="Default",
    )
    return ks_session.Session(auth=auth)
