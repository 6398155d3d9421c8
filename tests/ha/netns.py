"""Private network namespaces for the HA tests: one bridge, one veth pair per member.

``Net`` creates namespaces named ``pw-<random>-<member>`` and a bridge in a namespace of
its own (``pw-<random>-br``), so the root namespace gets no interface, route or address:
every packet of these tests stays between namespaces the test created, and two runs at
once (another worktree) never see each other. ``close()`` kills whatever still runs in
them and deletes them; it is safe to call twice and after a half-made setup.

The test process itself talks to the members from a client namespace: ``entered(ns)``
moves the calling thread there (setns(2) acts on one thread; threads it starts inherit
the namespace) and back again, so the rest of a pytest session keeps the root one.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

SUBNET = "10.213.0"  # a /24 inside each run's own bridge: private to that run
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class NetnsError(RuntimeError):
    """The namespaces could not be made: the tests fail with this, never skip."""


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(args), capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise NetnsError(f"{' '.join(args)}: exit {done.returncode}: {done.stderr.strip()}")
    return done


def _setns(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NetnsError(f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


@dataclass
class Net:
    """A bridge and its members; ``add(member, host)`` gives ``SUBNET.host/24``."""

    prefix: str = field(default_factory=lambda: f"pw-{secrets.token_hex(3)}")
    members: dict[str, str] = field(default_factory=dict)  # member → address
    _made: list[str] = field(default_factory=list)

    @property
    def bridge_ns(self) -> str:
        return f"{self.prefix}-br"

    def ns(self, member: str) -> str:
        return f"{self.prefix}-{member}"

    def create(self) -> None:
        if os.geteuid() != 0:
            raise NetnsError("the HA tests need root (ip netns, veth, bridge); run them as root")
        self._namespace(self.bridge_ns)
        sh("ip", "-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.bridge_ns, "link", "set", "br0", "up")

    def add(self, member: str, host: int) -> str:
        """A namespace for ``member`` with eth0 on the bridge at ``SUBNET.host``."""
        ns, address = self.ns(member), f"{SUBNET}.{host}"
        port = f"v{len(self.members)}"  # the bridge side's name, unique in its namespace
        self._namespace(ns)
        br = ["ip", "-n", self.bridge_ns, "link"]
        sh(*br, "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh(*br, "set", port, "master", "br0", "up")
        sh("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        self.members[member] = address
        return address

    def _namespace(self, ns: str) -> None:
        sh("ip", "netns", "add", ns)
        self._made.append(ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")

    def exec(self, member: str) -> list[str]:
        """The command prefix that runs a program in ``member``'s namespace."""
        return ["ip", "netns", "exec", self.ns(member)]

    def addresses(self, member: str) -> list[str]:
        out = sh("ip", "-n", self.ns(member), "-4", "-o", "addr", "show", "dev", "eth0")
        return [line.split()[3].split("/")[0] for line in out.stdout.splitlines()]

    @contextlib.contextmanager
    def entered(self, member: str) -> Iterator[None]:
        """Run the calling thread (and the threads it starts) in ``member``'s namespace."""
        home = f"/proc/self/task/{threading.get_native_id()}/ns/net"
        with open(home, "rb") as saved:
            _setns(f"/run/netns/{self.ns(member)}")
            try:
                yield
            finally:
                if _libc.setns(saved.fileno(), CLONE_NEWNET) != 0:
                    raise NetnsError("could not return to the test's own network namespace")

    def close(self) -> None:
        for ns in reversed(self._made):
            self._kill_all(ns)
            sh("ip", "netns", "del", ns, check=False)
        self._made.clear()

    @staticmethod
    def _kill_all(ns: str) -> None:
        for _ in range(50):
            found = sh("ip", "netns", "pids", ns, check=False).stdout.split()
            pids = [int(p) for p in found if int(p) != os.getpid()]  # never the test itself
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
