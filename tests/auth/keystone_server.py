"""A real Keystone (PyPI ``keystone`` under uWSGI, from .venv-keystone made by
scripts/keystone.sh) on a loopback port, its state in a temporary directory.

Set up as an operator would: ``keystone-manage db_sync``, ``fernet_setup``,
``credential_setup`` and ``bootstrap`` on SQLite, then through the API: a ``service``
project with Portway's service user (role ``service``), projects ``alpha`` and ``beta``
with users holding admin, member, reader or an unknown role, and the ``proxy`` service
with its endpoint ``.../dynamicproxy-api/v1/$(tenant_id)s``.
"""

from __future__ import annotations

import grp
import os
import pwd
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from portway.auth.config import KeystoneConfig
from tests.dns.bind import free_port

VENV = Path(__file__).resolve().parents[2] / ".venv-keystone"
ADMIN_PASSWORD = "admin-secret"
SERVICE_USER, SERVICE_PASSWORD = "portway", "portway-secret"
LONG_USER = "l" * 250 + "-user"
# user → (project, role); every user's password is "<user>-pw".
USERS = {
    "adam": ("alpha", "admin"),
    "alice": ("alpha", "member"),
    "rita": ("alpha", "reader"),
    "olga": ("alpha", "observer"),  # a role Portway does not know
    "bob": ("beta", "member"),
    LONG_USER: ("alpha", "member"),  # Keystone's longest user name (255 characters)
}


def keystone_binaries() -> tuple[Path, Path]:
    manage, uwsgi = VENV / "bin" / "keystone-manage", VENV / "bin" / "uwsgi"
    if not (manage.exists() and uwsgi.exists()):
        pytest.fail(f"no Keystone in {VENV}: run scripts/keystone.sh (scripts/test.sh does)")
    return manage, uwsgi


@dataclass
class Keystone:
    root: Path
    port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)  # where the proxy endpoint points
    process: subprocess.Popen[bytes] | None = None
    project_ids: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    etc_keystone_existed: bool = field(default_factory=Path("/etc/keystone").exists)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self, **overrides: Any) -> KeystoneConfig:
        values: dict[str, Any] = {
            "url": self.url,
            "user": SERVICE_USER,
            "password": SERVICE_PASSWORD,
            "project": "service",
            "timeout": 5.0,
        }
        return KeystoneConfig(**(values | overrides))

    # -- set-up ------------------------------------------------------------------------

    def write_config(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        r = self.root
        (r / "keystone.conf").write_text(
            "[DEFAULT]\nuse_stderr = true\n"
            f"[database]\nconnection = sqlite:///{r / 'keystone.db'}\n"
            f"[fernet_tokens]\nkey_repository = {r / 'fernet-keys'}\n"
            f"[fernet_receipts]\nkey_repository = {r / 'fernet-receipts'}\n"
            f"[credential]\nkey_repository = {r / 'credential-keys'}\n"
            # bcrypt's minimum cost: each password check takes ms, not seconds.
            "[identity]\npassword_hash_rounds = 4\n"
            "[token]\nexpiration = 3600\n"
            f"[oslo_policy]\npolicy_file = {r / 'policy.yaml'}\n"
        )

    def manage(self, *args: str) -> None:
        manage, _ = keystone_binaries()
        begun = time.monotonic()
        done = subprocess.run(
            [str(manage), "--config-file", str(self.root / "keystone.conf"), *args],
            capture_output=True,
            text=True,
            env=self._env(),
        )
        if done.returncode != 0:
            pytest.fail(f"keystone-manage {args[0]} failed: {done.stderr[-3000:]}")
        self.timings[args[0]] = time.monotonic() - begun

    def initialize(self) -> None:
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        owner = ("--keystone-user", user, "--keystone-group", group)
        self.manage("db_sync")
        self.manage("fernet_setup", *owner)
        self.manage("credential_setup", *owner)
        self.manage(
            "bootstrap",
            "--bootstrap-password", ADMIN_PASSWORD,
            "--bootstrap-admin-url", f"{self.url}/v3",
            "--bootstrap-public-url", f"{self.url}/v3",
            "--bootstrap-region-id", "RegionOne",
        )  # fmt: skip

    def start(self) -> None:
        _, uwsgi = keystone_binaries()
        begun = time.monotonic()
        log = (self.root / "uwsgi.log").open("ab")
        command = [
            str(uwsgi),
            "--http-socket", f"127.0.0.1:{self.port}",
            "--wsgi", "keystone.wsgi.api:application",
            "--master", "--processes", "1", "--threads", "4",
            "--need-app", "--die-on-term",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self._env(),
            start_new_session=True,  # its own process group, so pause() stops all of it
        )
        deadline = begun + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"uwsgi exited: {(self.root / 'uwsgi.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/v3", timeout=2).status_code == 200:
                    self.timings["uwsgi"] = time.monotonic() - begun
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail("Keystone did not answer within 120 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.resume()
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP to its process group): connections are accepted by
        the kernel and never answered."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGCONT)

    def _env(self) -> dict[str, str]:
        # The WSGI app finds its config here; nothing is read from or written to
        # /etc/keystone.
        return {**os.environ, "OS_KEYSTONE_CONFIG_DIR": str(self.root)}

    # -- the API, as the admin ---------------------------------------------------------

    def token(self, user: str, password: str, project: str | None) -> str:
        """A token as a client gets one (project-scoped, or unscoped with None)."""
        auth: dict[str, Any] = {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": user, "domain": {"id": "default"}, "password": password}
                },
            }
        }
        if project is not None:
            auth["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
        response = httpx.post(f"{self.url}/v3/auth/tokens", json={"auth": auth}, timeout=30)
        assert response.status_code == 201, response.text
        return response.headers["x-subject-token"]

    def user_token(self, user: str) -> str:
        return self.token(user, f"{user}-pw", USERS[user][0])

    def revoke(self, token: str) -> None:
        headers = {
            "X-Auth-Token": self.token("admin", ADMIN_PASSWORD, "admin"),
            "X-Subject-Token": token,
        }
        assert httpx.delete(f"{self.url}/v3/auth/tokens", headers=headers).status_code == 204

    def seed(self) -> None:
        begun = time.monotonic()
        admin = self.admin_api()
        roles = {r["name"]: r["id"] for r in admin("GET", "/v3/roles")["roles"]}
        roles["observer"] = admin("POST", "/v3/roles", json={"role": {"name": "observer"}})["role"][
            "id"
        ]
        for name in ("service", "alpha", "beta"):
            body = {"project": {"name": name, "domain_id": "default"}}
            self.project_ids[name] = admin("POST", "/v3/projects", json=body)["project"]["id"]
        users = {SERVICE_USER: ("service", "service")} | USERS
        for user, (project, role) in users.items():
            password = SERVICE_PASSWORD if user == SERVICE_USER else f"{user}-pw"
            body = {"user": {"name": user, "domain_id": "default", "password": password}}
            user_id = admin("POST", "/v3/users", json=body)["user"]["id"]
            path = f"/v3/projects/{self.project_ids[project]}/users/{user_id}/roles/{roles[role]}"
            admin("PUT", path)
        # What `openstack service create --name proxy proxy` and `openstack endpoint create
        # proxy public http://.../dynamicproxy-api/v1/$(tenant_id)s` send.
        body = {"service": {"name": "proxy", "type": "proxy"}}
        service_id = admin("POST", "/v3/services", json=body)["service"]["id"]
        url = f"http://127.0.0.1:{self.api_port}/dynamicproxy-api/v1/$(tenant_id)s"
        body = {
            "endpoint": {
                "service_id": service_id,
                "interface": "public",
                "region_id": "RegionOne",
                "url": url,
            }
        }
        admin("POST", "/v3/endpoints", json=body)
        self.timings["seed"] = time.monotonic() - begun

    def admin_api(self) -> Callable[..., dict[str, Any]]:
        """A caller of the API with a fresh admin token."""
        token = self.token("admin", ADMIN_PASSWORD, "admin")
        # uWSGI's --http-socket closes every connection after its answer: never reuse one.
        client = httpx.Client(
            base_url=self.url,
            headers={"X-Auth-Token": token},
            timeout=30,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

        def call(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
            response = client.request(method, path, **kwargs)
            assert response.status_code < 300, f"{method} {path}: {response.text}"
            return response.json() if response.content else {}

        return call

    def set_enabled(self, user: str, enabled: bool) -> None:
        admin = self.admin_api()
        found = admin("GET", "/v3/users", params={"name": user})["users"][0]
        admin("PATCH", f"/v3/users/{found['id']}", json={"user": {"enabled": enabled}})


def start_keystone(root: Path) -> Keystone:
    keystone = Keystone(root=root)
    keystone.write_config()
    keystone.initialize()
    keystone.start()
    try:
        keystone.seed()
    except BaseException:
        keystone.stop()  # a failed set-up leaves no server behind
        raise
    return keystone
