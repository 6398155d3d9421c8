"""Projects (tenants), their tokens, DNS zones and the change log entries."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class Role(enum.StrEnum):
    ADMIN = "admin"
    MEMBER = "member"
    READER = "reader"

    @property
    def can_write(self) -> bool:
        return self is not Role.READER


@dataclass(frozen=True, kw_only=True, slots=True)
class Project:
    name: str
    created_at: datetime | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Token:
    """A credential. ``project`` is None for service-wide admin tokens; the secret itself
    is never kept, only its hash."""

    id: str
    project: str | None
    role: Role
    description: str = ""
    created_at: datetime | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Zone:
    """A DNS zone under which hostnames may be claimed: shared by all, or owned by one.

    With ``shared_host`` it is instead one hostname (its own name, nothing below it) that
    every project may route under path prefixes of its own: the operator's explicit way
    to split a hostname between projects (a legacy tools domain). It has no owner.
    """

    name: str
    project: str | None = None  # owner; None with shared=True means everyone
    shared: bool = False
    shared_host: bool = False
    default: bool = False
    deprecated: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class Change:
    """One row of the audit trail: who changed what, when, with before/after values."""

    revision: int
    project: str | None
    actor: str
    kind: str  # "proxy", "backend", "project", "token", "zone", "certificate"
    action: str  # "create", "update", "delete"
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    at: datetime
