"""The RFC 2136 UPDATE messages Portway sends, built from plan values (no I/O).

Every message carries the prerequisite that makes it safe on its own, so the server
applies it whole or not at all (RFC 2136 §3.2) and a name that changed since Portway
looked is never overwritten:

- ``claim_free``: "name is not in use" (§2.4.5), then add the A, AAAA and marker records.
  Prerequisites are checked against the zone's own names, never against wildcard
  answers, so ``x.parent`` can be claimed beside ``*.parent``.
- ``converge``: the TXT RRset is still exactly what was read (value-dependent, §2.4.2),
  so the name is still ours; then replace its addresses and rewrite the marker.
- ``release_exact`` / ``release_among``: the same prerequisite, then delete.
- ``move``: both names at once in one zone, so a rename is never half done.
"""

from __future__ import annotations

import dns.name
import dns.rdataclass
import dns.rdataset
import dns.tsig
import dns.update

from portway.dns.plan import ADDRESS_TYPES, Desired, RRset, marker


def absolute(hostname: str) -> dns.name.Name:
    return dns.name.from_text(hostname)


def new_update(zone: str, key: dns.tsig.Key) -> dns.update.UpdateMessage:
    return dns.update.UpdateMessage(absolute(zone), keyring=key)


def _rdataset(rrset: RRset, *, ttl: int | None = None) -> dns.rdataset.Rdataset:
    return dns.rdataset.from_text_list(
        dns.rdataclass.IN, rrset.rdtype, rrset.ttl if ttl is None else ttl, sorted(rrset.values)
    )


def _add_all(update: dns.update.UpdateMessage, name: dns.name.Name, desired: Desired) -> None:
    for rrset in desired.rrsets().values():
        update.add(name, _rdataset(rrset))


def _delete_addresses(update: dns.update.UpdateMessage, name: dns.name.Name) -> None:
    for rdtype in ADDRESS_TYPES:
        update.delete(name, rdtype)


def _still(update: dns.update.UpdateMessage, name: dns.name.Name, txt: RRset) -> None:
    """Prerequisite: the TXT RRset at ``name`` is exactly ``txt`` (TTL 0, as §2.4 asks)."""
    update.present(name, _rdataset(txt, ttl=0))


def claim_free(
    zone: str, key: dns.tsig.Key, hostname: str, desired: Desired
) -> dns.update.UpdateMessage:
    update = new_update(zone, key)
    name = absolute(hostname)
    update.absent(name)
    _add_all(update, name, desired)
    return update


def converge(
    zone: str, key: dns.tsig.Key, hostname: str, txt: RRset, desired: Desired
) -> dns.update.UpdateMessage:
    """Give a name of ours (its TXT RRset read as ``txt``) the desired addresses and TTL;
    the other TXT records beside the marker stay."""
    update = new_update(zone, key)
    name = absolute(hostname)
    _still(update, name, txt)
    _delete_addresses(update, name)
    update.delete(name, "TXT", marker(desired.owner))
    _add_all(update, name, desired)
    return update


def _ours_only(desired: Desired) -> RRset:
    return RRset("TXT", 0, frozenset({marker(desired.owner)}))


def release_exact(
    zone: str, key: dns.tsig.Key, hostname: str, desired: Desired
) -> dns.update.UpdateMessage:
    """Remove a name whose only TXT record is our marker: the usual case."""
    update = new_update(zone, key)
    name = absolute(hostname)
    _still(update, name, _ours_only(desired))
    _delete_addresses(update, name)
    update.delete(name, "TXT")
    return update


def release_among(
    zone: str, key: dns.tsig.Key, hostname: str, txt: RRset, desired: Desired
) -> dns.update.UpdateMessage:
    """Remove our records from a name that has other TXT records too (kept)."""
    update = new_update(zone, key)
    name = absolute(hostname)
    _still(update, name, txt)
    _delete_addresses(update, name)
    update.delete(name, "TXT", marker(desired.owner))
    return update


def move(
    zone: str, key: dns.tsig.Key, old: str, new: str, desired: Desired
) -> dns.update.UpdateMessage:
    """Rename within one zone: ``new`` must be free and ``old`` exactly ours."""
    update = new_update(zone, key)
    old_name, new_name = absolute(old), absolute(new)
    update.absent(new_name)
    _still(update, old_name, _ours_only(desired))
    _delete_addresses(update, old_name)
    update.delete(old_name, "TXT")
    _add_all(update, new_name, desired)
    return update
