"""keepalived in each node's namespace, configured by the block docs/ha.md shows (one
definition: the operator's file and the tested one are the same text)."""

from __future__ import annotations

import re
import shutil
import string
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.ha.netns import SUBNET, Net, NetnsError

DOC = Path(__file__).resolve().parents[2] / "docs" / "ha.md"
MARKER = "<!-- keepalived.conf.in:"
FLOATING = f"{SUBNET}.100"
ROUTER_ID = 51


def doc_template() -> string.Template:
    """The keepalived.conf block of docs/ha.md: the fenced block after the marker."""
    text = DOC.read_text()
    found = re.search(re.escape(MARKER) + r".*?\n```\n(.*?)```", text, re.S)
    if found is None:
        raise AssertionError(f"{DOC}: no keepalived.conf block after {MARKER!r}")
    return string.Template(found.group(1))


def render(node_api: str, priority: int) -> str:
    """This node's keepalived.conf; an unknown placeholder in the doc raises KeyError."""
    return doc_template().substitute(
        NODE_API=node_api,
        INTERFACE="eth0",
        ROUTER_ID=ROUTER_ID,
        PRIORITY=priority,
        FLOATING_ADDRESS=f"{FLOATING}/24",
    )


@dataclass
class Keepalived:
    net: Net
    root: Path
    procs: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    monitors: list[subprocess.Popen[str]] = field(default_factory=list)

    def config(self, member: str, node_api: str, priority: int) -> Path:
        path = self.root / f"keepalived-{member}.conf"
        path.write_text(render(node_api, priority))
        return path

    def check(self, conf: Path) -> None:
        done = subprocess.run(
            ["keepalived", "--config-test", "-f", str(conf)], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise AssertionError(f"keepalived --config-test: {done.stderr}")

    def start(self, member: str, conf: Path) -> None:
        if shutil.which("keepalived") is None:
            raise NetnsError("keepalived not found: run scripts/test.sh (installs it)")
        run = self.root / f"run-{member}"
        run.mkdir(exist_ok=True)
        cmd = [
            *self.net.exec(member),
            "keepalived",
            *("--dont-fork", "--log-console", "--log-detail", "--no-syslog", "--vrrp"),
            *("-f", str(conf), "-p", str(run / "k.pid"), "-r", str(run / "vrrp.pid")),
        ]
        log = (self.root / f"keepalived-{member}.log").open("w")
        self.procs[member] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)

    def holders(self, members: list[str]) -> list[str]:
        return [m for m in members if FLOATING in self.net.addresses(m)]

    def wait_holder(self, members: list[str], *, other_than: str = "", timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while True:
            # Only the candidates: each look is a subprocess, and it sets the resolution.
            held = self.holders([m for m in members if m != other_than])
            if len(held) == 1:
                return held[0]
            if time.monotonic() > deadline:
                raise NetnsError(f"the floating address is on {held}: {self.logs()}")
            time.sleep(0.02)

    def watch(self, member: str) -> list[float]:
        """When ``member`` gains the floating address, as the kernel tells (``ip monitor``:
        each look through ``ip addr`` is a subprocess, too slow to time the move with)."""
        added: list[float] = []
        cmd = ["ip", "-n", self.net.ns(member), "monitor", "address", "dev", "eth0"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.monitors.append(proc)

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                if f" {FLOATING}/" in line and not line.startswith("Deleted"):
                    added.append(time.monotonic())

        threading.Thread(target=read, daemon=True).start()
        return added

    def logs(self) -> str:
        return "\n".join(p.read_text()[-1500:] for p in self.root.glob("keepalived-*.log"))

    def stop(self) -> None:
        for proc in [*self.procs.values(), *self.monitors]:
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
        self.monitors.clear()
