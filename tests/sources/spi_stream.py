"""A long, seeded stream of routing messages for the restart tests, and what it means
computed independently of the code under test: per application, the set of endpoints
and aliases left after every event in order.

Every endpoint and alias in the stream is added at most once and removed at most once,
so every message is distinct, and a lost message shows either in the final routes or
in the set of events applied."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from portway.protocol.routing_spi import MalformedEvent, RoutingEvent, parse_event
from tests.sources.spi_events import ruby_yaml

MALFORMED_BODIES = (
    ":action: [unclosed\n",
    ":action: :teleport_application\n:app_name: a\n:namespace: b\n",
    "---\n:action: :add_alias\n:app_name: app0\n:namespace: ns0\n",
    "\x00\x01 not yaml at all: [\n",
)


@dataclass
class Model:
    """app (app_name, namespace) → endpoints {(address, port)} and aliases {hostname}."""

    endpoints: dict[tuple[str, str], set[tuple[str, int]]] = field(default_factory=dict)
    aliases: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    def apps(self) -> set[tuple[str, str]]:
        return set(self.endpoints)


def stream(
    count: int, *, seed: int, apps: int = 8, malformed: float = 0.03
) -> tuple[list[str], Model, set[RoutingEvent]]:
    """``count`` message bodies, their meaning, and the distinct events among them."""
    rng = random.Random(seed)
    names = [(f"app{i}", f"ns{seed % 97}x{i}") for i in range(apps)]
    model = Model()
    bodies: list[str] = []
    next_port = 20000
    alias_no = 0
    while len(bodies) < count:
        if rng.random() < malformed:
            bodies.append(rng.choice(MALFORMED_BODIES))
            continue
        app_name, namespace = rng.choice(names)
        key = (app_name, namespace)
        base: dict[str, Any] = {"app_name": app_name, "namespace": namespace}
        if key not in model.endpoints:
            model.endpoints[key], model.aliases[key] = set(), set()
            bodies.append(
                ruby_yaml({"action": "create_application", **base, "scalable": True, "ha": True})
            )
            continue
        roll = rng.random()
        live, aliases = model.endpoints[key], model.aliases[key]
        if roll < 0.5 or not live:
            next_port += 1
            address = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            live.add((address, next_port))
            bodies.append(ruby_yaml(_endpoint(base, address, next_port)))
        elif roll < 0.7:
            address, port = sorted(live)[rng.randrange(len(live))]
            live.discard((address, port))
            bodies.append(ruby_yaml(_removal(base, address, port)))
        elif roll < 0.85 or not aliases:
            alias_no += 1
            alias = f"www{alias_no}.{app_name}.{namespace}.example.com"
            aliases.add(alias)
            bodies.append(ruby_yaml({"action": "add_alias", **base, "alias": alias}))
        else:
            alias = sorted(aliases)[rng.randrange(len(aliases))]
            aliases.discard(alias)
            bodies.append(ruby_yaml({"action": "remove_alias", **base, "alias": alias}))
    events = {e for e in map(parse_event, bodies) if not isinstance(e, MalformedEvent)}
    return bodies, model, events


def _endpoint(base: dict[str, Any], address: str, port: int) -> dict[str, Any]:
    return {
        "action": "add_public_endpoint",
        **base,
        "gear_id": f"{port:024x}",
        "public_port_name": "haproxy-1.4",
        "public_address": address,
        "public_port": port,
        "protocols": ["http", "ws"],
        "types": ["load_balancer"],
        "mappings": [{"frontend": "", "backend": ""}],
    }


def _removal(base: dict[str, Any], address: str, port: int) -> dict[str, Any]:
    return {
        "action": "remove_public_endpoint",
        **base,
        "gear_id": f"{port:024x}",
        "public_address": address,
        "public_port": port,
    }


def observed(apps: dict[Any, Any]) -> Model:
    """The same shape, read from ``{AppKey: AppRoutes}``."""
    model = Model()
    for key, app in apps.items():
        name = (key.app_name, key.namespace)
        model.endpoints[name] = {(m.address, m.port) for m in app.members}
        model.aliases[name] = set(app.aliases)
    return model
