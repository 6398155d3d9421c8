"""A real BIND 9 (Debian's ``bind9``) on a loopback port, with a TSIG key and dynamic
zones, for the DNS tests; records are read back with ``dig``, not with Portway's code.

Zones: ``cloud.test`` and ``apps.test`` take updates signed with ``portway-key``;
``locked.test`` grants only another key. ``cloud.test`` starts with records Portway did
not create: a floating IP's A, a CNAME, another cluster's marker, a TXT-only name.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from portway.dns.config import DnsConfig
from portway.runtime.config import Listen

KEY = "portway-key"
ZONES = ("cloud.test", "apps.test", "locked.test")
MANAGED = ("cloud.test", "apps.test")
FOREIGN_RECORDS = """\
floating IN A 192.0.2.10
alias IN CNAME floating.cloud.test.
other IN A 192.0.2.11
other IN TXT "heritage=portway,owner=another-cluster"
notes IN TXT "v=spf1 -all"
"""


def named_binary() -> str:
    found = shutil.which("named") or ("/usr/sbin/named" if Path("/usr/sbin/named").exists() else "")
    if not found or not shutil.which("dig") or not shutil.which("tsig-keygen"):
        pytest.fail("BIND not found: run scripts/test.sh (installs bind9 and bind9-dnsutils)")
    return found


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (named listens on both)."""
    while True:
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port


def _secret(text: str) -> str:
    return text.split('secret "', 1)[1].split('"', 1)[0]


@dataclass
class Bind:
    root: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    secret: str = ""
    started_in: float = 0.0

    @property
    def key_file(self) -> Path:
        return self.root / "portway.key"

    def write_config(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        keygen = ["tsig-keygen", "-a", "hmac-sha256"]
        key = subprocess.run([*keygen, KEY], check=True, capture_output=True, text=True).stdout
        self.key_file.write_text(key)
        for other in ("other-key", "operator-key"):
            made = subprocess.run([*keygen, other], check=True, capture_output=True, text=True)
            (self.root / f"{other}.conf").write_text(made.stdout)
        self.secret = _secret(key)
        zones = "".join(self._zone_clause(z) for z in ZONES)
        (self.root / "named.conf").write_text(
            f'include "{self.key_file}";\ninclude "{self.root / "other-key.conf"}";\n'
            f'include "{self.root / "operator-key.conf"}";\n'
            f'options {{\n  directory "{self.root}";\n'
            f"  listen-on port {self.port} {{ 127.0.0.1; }};\n  listen-on-v6 {{ none; }};\n"
            f'  pid-file "{self.root / "named.pid"}";\n'
            f'  session-keyfile "{self.root / "session.key"}";\n'
            "  recursion no;\n  dnssec-validation no;\n  notify no;\n"
            "  minimal-responses no;\n};\ncontrols { };\n" + zones
        )
        for zone in ZONES:
            extra = FOREIGN_RECORDS if zone == "cloud.test" else ""
            (self.root / f"{zone}.zone").write_text(
                f"$TTL 300\n@ IN SOA ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 60\n"
                f"@ IN NS ns.{zone}.\nns IN A 127.0.0.1\n{extra}"
            )

    def _zone_clause(self, zone: str) -> str:
        """As docs/dynamicproxy.md tells operators: Portway's key may change A, AAAA and
        TXT records below the zone and transfer it; an operator's key may do anything."""
        key = "other-key" if zone == "locked.test" else KEY
        return (
            f'zone "{zone}" {{\n  type primary;\n  file "{self.root / zone}.zone";\n'
            f"  update-policy {{\n    grant {key} zonesub A AAAA TXT;\n"
            "    grant operator-key zonesub ANY;\n  };\n"
            f"  allow-transfer {{ key {key}; }};\n}};\n"
        )

    def start(self) -> None:
        """Start named in the foreground (-g: logs to stderr, no fork) and wait until it
        answers. As root it stays root: the state is in a private temporary directory."""
        log = (self.root / "named.log").open("ab")
        begun = time.monotonic()
        self.process = subprocess.Popen(
            [named_binary(), "-g", "-c", str(self.root / "named.conf")],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = begun + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"named exited: {(self.root / 'named.log').read_text()[-2000:]}")
            if self.dig("cloud.test", "SOA"):
                self.started_in = time.monotonic() - begun
                return
            time.sleep(0.05)
        self.stop()
        pytest.fail("named did not answer within 30 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def config(self, **overrides: object) -> DnsConfig:
        values: dict[str, object] = {
            "server": Listen(host="127.0.0.1", port=self.port),
            "zones": MANAGED,
            "key_name": KEY,
            "algorithm": "hmac-sha256",
            "secret": self.secret,
            "addresses": ("192.0.2.80", "2001:db8::80"),
            "ttl": 120,
            "owner": "portway-test",
            "timeout": 3.0,
        }
        values.update(overrides)
        return DnsConfig(**values)  # type: ignore[arg-type]

    def dig(self, name: str, rdtype: str) -> set[str]:
        """The answer's records (``dig +short``), or an empty set."""
        out = subprocess.run(
            [
                "dig",
                "+short",
                "+tcp",
                "+time=2",
                "+tries=1",
                "-p",
                str(self.port),
                "@127.0.0.1",
                name,
                rdtype,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0 or ";;" in out.stdout:
            return set()
        return {line for line in out.stdout.splitlines() if line}

    def names(self, zone: str = "cloud.test") -> dict[str, set[str]]:
        """The zone's records by name (AXFR with the key): ``{"web.cloud.test": {"A
        192.0.2.80", ...}}``, to see what exists at exact names."""
        out = subprocess.run(
            [
                "dig",
                "+nocmd",
                "+nostats",
                "+noall",
                "+answer",
                "-p",
                str(self.port),
                "-y",
                f"hmac-sha256:{KEY}:{self.secret}",
                "@127.0.0.1",
                zone,
                "AXFR",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        found: dict[str, set[str]] = {}
        for line in out.stdout.splitlines():
            name, _ttl, _class, rdtype, value = line.split(None, 4)
            found.setdefault(name.rstrip(".").lower(), set()).add(f"{rdtype} {value}")
        return found

    def nsupdate(self, commands: str) -> None:
        """Change the zone as an operator would, with nsupdate and the operator's key."""
        script = f"server 127.0.0.1 {self.port}\n{commands}\nsend\n"
        subprocess.run(
            ["nsupdate", "-k", str(self.root / "operator-key.conf")],
            input=script,
            text=True,
            check=True,
            capture_output=True,
        )


def start_bind(root: Path) -> Bind:
    bind = Bind(root=root)
    bind.write_config()
    bind.start()
    return bind
