"""Schemathesis against a real ``portway serve`` with two projects (issue 7, defect 7).

The owner's run checks that the OpenAPI document describes what the server accepts: no
5xx, schema-valid requests never refused as malformed (400), schema-invalid ones refused,
responses as documented. The isolation run sends project alpha's token to project
beta's URLs, and to alpha's URLs naming beta's objects: nothing may succeed, and beta's
state must be the same afterwards. Examples per operation are bounded (EXAMPLES) so the
whole module stays within about two minutes on two cores.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import trustme
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import Case, GenerationMode

from tests.integration.harness import Portway

EXAMPLES = int(os.environ.get("PORTWAY_SCHEMATHESIS_EXAMPLES", "12"))
# Statuses a schema-valid request may get: 422 is a rule the document cannot state (a
# hostname's labels, zones, quotas); 400 is not among them: it means "not as documented".
ACCEPTED = ["2xx", "401", "403", "404", "409", "422"]
OBJECTS = ("proxy", "backend", "token", "certificate")


@dataclass
class World:
    pw: Portway
    alpha: dict[str, str]  # a member token of project alpha
    alpha_ids: dict[str, str]  # path parameter → one of alpha's real objects
    beta_ids: dict[str, str]  # the same for beta
    beta_before: dict[str, Any]
    calls: dict[str, int] = field(default_factory=lambda: {"owner": 0, "isolation": 0})


def _ok(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def _beta_state(pw: Portway) -> dict[str, Any]:
    """Everything project beta holds, as its owner (the admin) sees it."""
    state = {}
    for kind in ("proxies", "tokens", "certificates", "changes"):
        state[kind] = _ok(pw.api("GET", f"/v1/beta/{kind}", params={"limit": "1000"}), 200)
    state["project"] = _ok(pw.api("GET", "/v1/projects/beta"), 200)
    return state


def _populate(pw: Portway, project: str) -> dict[str, str]:
    """A token, a certificate and a proxy (with a backend) in ``project``; their ids."""
    _ok(pw.api("POST", "/v1/projects", json={"project": {"name": project}}))
    token = _ok(pw.api("POST", f"/v1/{project}/tokens", json={"token": {"role": "member"}}))
    hostname = f"app.{project}.test"
    leaf = trustme.CA().issue_cert(hostname)
    cert = {
        "name": f"{project}-cert",
        "chain": "".join(b.bytes().decode() for b in leaf.cert_chain_pems),
        "key": leaf.private_key_pem.bytes().decode(),
    }
    certificate = _ok(pw.api("POST", f"/v1/{project}/certificates", json={"certificate": cert}))
    proxy = {
        "hostname": hostname,
        "tls": {"certificate": certificate["certificate"]["id"]},
        "backends": [{"address": "127.0.0.1", "port": 9}],
    }
    created = _ok(pw.api("POST", f"/v1/{project}/proxies", json={"proxy": proxy}))["proxy"]
    return {
        "proxy": created["id"],
        "backend": created["backends"][0]["id"],
        "token": token["token"]["id"],
        "secret": token["token"]["secret"],
        "certificate": certificate["certificate"]["id"],
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    pw = Portway(Path(tmp_path_factory.mktemp("schemathesis")) / "data")
    pw.start()
    try:
        alpha, beta = _populate(pw, "alpha"), _populate(pw, "beta")
        yield World(
            pw=pw,
            alpha={"X-Auth-Token": alpha.pop("secret")},
            alpha_ids=alpha,
            beta_ids=beta,
            beta_before=_beta_state(pw),
        )
    finally:
        pw.stop()


@pytest.fixture(scope="module")
def api_schema(world: World) -> Any:
    config = schemathesis.Config.from_dict(
        {
            "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED}},
            "request-timeout": 10,
        }
    )
    return schemathesis.openapi.from_url(f"{world.pw.api_url}/openapi.json", config=config)


def _operations(api_schema: Any) -> list[Any]:
    found = [result.ok() for result in api_schema.get_all_operations()]
    assert len(found) >= 25, [op.label for op in found]
    return found


def _fuzz(
    operation: Any, mode: GenerationMode, test: Callable[[Case], None], **fixed: Any
) -> str | None:
    """Run ``test`` on EXAMPLES generated cases; the first failure, described, or None.
    Shrinking is off: it would spend minutes to make a failing request shorter."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    def run(case: Case) -> None:
        test(case)

    try:
        run()
    except Exception as err:  # every failure is reported, not just the first
        return f"{operation.label} ({mode.value}): {err}"
    return None


def test_owner_requests_match_the_document(api_schema: Any, world: World) -> None:
    def owner(case: Case) -> None:
        world.calls["owner"] += 1
        case.call_and_validate(headers=world.alpha, timeout=10)

    failures = []
    for operation in _operations(api_schema):
        names = set(re.findall(r"{(\w+)}", operation.path))
        # alpha's own objects, so that requests get past the look-up; never its token
        # (the fuzzer would revoke its own credentials) and never a DELETE of the objects
        # the operations after it need.
        fixed = {"project": "alpha", "name": "alpha", "token": "0" * 32}
        if operation.method.upper() != "DELETE":
            fixed |= world.alpha_ids
        fixed = {n: v for n, v in fixed.items() if n in names}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failure = _fuzz(operation, mode, owner, path_parameters=fixed)
            failures += [failure] if failure else []
    assert not failures, "\n\n".join(failures)


def test_other_projects_objects_are_never_reached(api_schema: Any, world: World) -> None:
    def stranger(case: Case) -> None:
        world.calls["isolation"] += 1
        response = case.call(headers=world.alpha, timeout=10)
        where = f"{case.method} {case.formatted_path}"
        assert response.status_code < 500, f"{where}: {response.status_code} {response.text}"
        assert not 200 <= response.status_code < 300, f"{where} succeeded: {response.text}"

    failures = []
    for operation in _operations(api_schema):
        names = set(re.findall(r"{(\w+)}", operation.path))
        objects = {n: world.beta_ids[n] for n in sorted(names & set(OBJECTS))}
        targets = []
        if names & {"project", "name"}:  # beta's URL
            targets.append({"project": "beta", "name": "beta", **objects})
        if objects:  # alpha's own URL, naming beta's objects
            targets.append({"project": "alpha", "name": "alpha", **objects})
        for target in targets:
            fixed = {n: target[n] for n in names if n in target}
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                failure = _fuzz(operation, mode, stranger, path_parameters=fixed)
                failures += [failure] if failure else []
    assert not failures, "\n\n".join(failures)


def test_other_project_is_unchanged_after_fuzzing(world: World) -> None:
    assert world.calls["owner"] and world.calls["isolation"], "run the whole module"
    assert _beta_state(world.pw) == world.beta_before
