"""Real identities for source tests: Debian's oidentd on a loopback port, and real Unix
users (created here, as root, the way Toolforge's tool accounts exist) whose clients run
as separate processes, so the identity comes from the kernel's socket table."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from portway.sources.openshift import OpenShiftSettings
from tests.sources.activemq import Broker
from tests.sources.openshift_memory import MemoryOpenShiftRoutes
from tests.sources.openshift_running import Running
from tests.sources.registration_client import SCRIPT

TOOL_USERS = ("tools.alpha", "tools.beta", "notatool")
# The clients run as tool users, who cannot enter root's checkout or pyenv (CI clones into
# a 0700 directory): Debian's own interpreter, as on a Toolforge host.
CLIENT_PYTHON = "/usr/bin/python3"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def unix_users() -> tuple[str, ...]:
    if os.geteuid() != 0:
        pytest.fail("source tests create Unix users and need root (CI runs as root)")
    for user in TOOL_USERS:
        try:
            pwd.getpwnam(user)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
                check=True,
                capture_output=True,
            )
    return TOOL_USERS


@pytest.fixture(scope="session")
def identd_port() -> Iterator[int]:
    binary = shutil.which("oidentd") or "/usr/sbin/oidentd"
    if not Path(binary).exists():
        pytest.fail("oidentd is missing: run scripts/test.sh (installs Debian's 'oidentd')")
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "-i", "-S", "-a", "127.0.0.1", "-p", str(port), "-u", "nobody", "-g", "nogroup"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"oidentd exited: {proc.stderr.read()!r}")  # type: ignore[union-attr]
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("oidentd did not start listening")
    yield port
    proc.terminate()
    proc.wait(5)


# What the real Toolforge client does: one sendall, one recv(1024), the reply exactly "ok".
CLIENT = SCRIPT


def run_client_as(user: str, port: int, payload: str) -> str:
    """Send ``payload`` (with ``\\n`` escapes) to the listener as Unix user ``user``."""
    done = subprocess.run(
        ["runuser", "-u", user, "--", CLIENT_PYTHON, "-c", CLIENT, "127.0.0.1", str(port), payload],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.stdout


@pytest.fixture(scope="session")
def activemq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One private ActiveMQ for the session (tests use their own destinations); a test
    may stop, start or pause it, and leaves it running."""
    try:
        broker = Broker(tmp_path_factory.mktemp("activemq"))
    except RuntimeError as exc:
        pytest.fail(str(exc))
    broker.start()
    yield broker
    if broker.proc is not None and broker.proc.poll() is None:
        broker.resume()  # a failed test may have left it paused
    broker.stop()


@pytest.fixture
def queue() -> str:
    return f"/queue/routinginfo-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def start() -> Iterator[Callable[..., Running]]:
    running: list[Running] = []

    def run(settings: OpenShiftSettings, routes: MemoryOpenShiftRoutes | None = None) -> Running:
        source = Running(routes or MemoryOpenShiftRoutes(), settings)
        running.append(source)
        return source

    yield run
    for source in running:
        source.stop()
