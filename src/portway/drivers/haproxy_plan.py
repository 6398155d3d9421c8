"""What it takes to go from the configuration HAProxy runs to a new one (pure).

``plan(running, new)`` answers either "reload" (with the reason) or the Runtime API
commands that make the running HAProxy serve ``new`` without one:

- a member added, changed or removed in a backend's slots: ``set server <b>/<s> addr
  <ip> port <p>``, ``weight <w>`` and ``state ready|maint``; a weight change, drain
  included (weight 0), is ``weight`` alone;
- a member Portway's active checks declare down, or up again: ``state maint|ready``;
- a hostname with one proxy at ``/`` added, moved or removed: ``add/set/del map``.

- a proxy deleted whose hostname was a map entry: ``del map``, and its members put in
  maintenance; its backend section stays loaded, unreferenced, until the next reload.

Anything else (a new proxy, a path-prefix route, a proxy's settings, a backup flag, a
hostname member, more members than slots, certificates, a port of its own opened,
closed or given another proxy: its frontend and ``hosts-PORT.map``) changes the masked text of
``haproxy.cfg`` or another file, and needs a reload. Commands leave the
state in exactly what a reload of the new files would load, since the driver writes
those files too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from portway.drivers import haproxy_base as base
from portway.drivers.haproxy_config import HaproxyConfig, Slot
from portway.drivers.haproxy_syntax import word

# Files the Runtime API's changes are written to as well, so a reload agrees with them.
_LIVE_FILES = frozenset({base.CONFIG, base.HOSTS})


@dataclass(frozen=True, slots=True)
class Plan:
    reload: bool
    commands: tuple[str, ...] = ()
    reason: str = ""


def plan(running: HaproxyConfig | None, new: HaproxyConfig, map_ref: str) -> Plan:
    """``map_ref``: the host map's path as ``haproxy.cfg`` names it."""
    if running is None:
        return Plan(True, reason="no configuration is running")
    if running.front != new.front:
        return Plan(True, reason="the frontend (path-prefix routes, listeners) changed")
    if set(new.sections) - set(running.sections):
        return Plan(True, reason="a new proxy needs a backend section")
    if any(text != running.sections[name] for name, text in new.sections.items()):
        return Plan(True, reason="a proxy's settings changed beyond what the Runtime API sets")
    others = (set(running.files) | set(new.files)) - _LIVE_FILES
    changed = sorted(p for p in others if running.files.get(p) != new.files.get(p))
    if changed:
        return Plan(True, reason=f"{changed[0]} changed")
    commands = _map_commands(running.hosts, new.hosts, map_ref)
    for backend, slots in new.slots.items():
        # Make before break: slots that gain a member come up before slots that lose
        # one go to maintenance, so a replaced member never leaves a gap with no server.
        pairs = list(zip(running.slots[backend], slots, strict=True))
        pairs.sort(key=lambda pair: not pair[1].live)
        for old, slot in pairs:
            commands += _server_commands(f"{backend}/{slot.name}", old, slot)
    # A deleted proxy's backend stays loaded, unreferenced, until the next reload; its
    # members are put in maintenance so that nothing checks or reaches them.
    for backend in sorted(set(running.slots) - set(new.slots)):
        commands += [
            f"set server {backend}/{s.name} state maint" for s in running.slots[backend] if s.live
        ]
    return Plan(False, tuple(commands))


def _map_commands(old: Mapping[str, str], new: Mapping[str, str], ref: str) -> list[str]:
    out = [f"del map {ref} {word(k)}" for k in sorted(set(old) - set(new))]
    moved = sorted(k for k in new if k in old and old[k] != new[k])
    out += [f"set map {ref} {word(k)} {new[k]}" for k in moved]
    out += [f"add map {ref} {word(k)} {new[k]}" for k in sorted(set(new) - set(old))]
    return out


def _server_commands(server: str, old: Slot, new: Slot) -> list[str]:
    if old == new:
        return []
    if not new.live:
        return [] if not old.live or old.down else [f"set server {server} state maint"]
    moved = not old.live or (old.address, old.port) != (new.address, new.port)
    ready = old.live and not old.down  # what HAProxy's admin state is now
    out = []
    if moved:
        if ready:  # a new member in the slot: no request may reach the old address
            out.append(f"set server {server} state maint")
            ready = False
        out.append(f"set server {server} addr {word(new.address)} port {new.port}")
    if moved or old.weight != new.weight:
        out.append(f"set server {server} weight {new.weight}")
    if new.down == ready:  # Portway's verdicts: maintenance while down, ready when up
        out.append(f"set server {server} state {'maint' if new.down else 'ready'}")
    return out
