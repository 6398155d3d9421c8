"""API tokens: created with the secret shown once, stored as a SHA-256 hash."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import UTC, datetime

from portway.errors import AuthError, ForbiddenError, NotFoundError, ValidationError
from portway.model import Role, Token
from portway.service.auth import Actor, hash_secret, require_read
from portway.service.base import ServiceBase, new_id
from portway.store import Reader, Transaction

_BOOTSTRAP = Actor.system("bootstrap")  # the change log's actor for admin bootstrap
ENV_TOKEN_DESCRIPTION = "bootstrap admin from PORTWAY_ADMIN_TOKEN"
GENERATED_TOKEN_DESCRIPTION = "bootstrap admin generated on first start"


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


class TokenOps(ServiceBase):
    def authenticate(self, secret: str | None) -> Actor:
        """The Actor for a token secret, or AuthError (401)."""
        if not secret:
            raise AuthError("missing token: send X-Auth-Token or Authorization: Bearer")
        found = self._read(lambda r: r.token_by_hash(hash_secret(secret)))
        if found is None:
            raise AuthError("invalid token")
        if found.expires_at is not None and found.expires_at <= _now():
            raise AuthError("token expired")
        return Actor(name=f"token:{found.id}", role=found.role, project=found.project)

    def create_token(
        self, actor: Actor, project: str, role: Role, description: str = ""
    ) -> tuple[Token, str]:
        """A new token for ``project``; returns it with its secret (never shown again)."""
        if role is Role.ADMIN:
            raise ValidationError("admin tokens are service-wide, not per project", field="role")
        if actor.role is Role.READER:
            raise ForbiddenError("this token may only read")
        secret = _new_secret()
        with self._write(actor, project) as tx:
            token = Token(id=new_id(), project=project, role=role, description=description)
            token = self._insert(tx, token, secret, project)
        return token, secret

    def create_admin_token(self, actor: Actor, description: str = "") -> tuple[Token, str]:
        """A new service-wide admin token (admin only)."""
        secret = _new_secret()
        with self._write(actor) as tx:
            token = Token(id=new_id(), project=None, role=Role.ADMIN, description=description)
            token = self._insert(tx, token, secret, None)
        return token, secret

    def list_tokens(self, actor: Actor, project: str) -> list[Token]:
        def query(reader: Reader) -> list[Token]:
            require_read(reader, actor, project)
            return reader.list_tokens(project)

        return self._read(query)

    def delete_token(self, actor: Actor, project: str, token_id: str) -> None:
        with self._write(actor, project) as tx:
            before = next((t for t in tx.list_tokens(project) if t.id == token_id), None)
            if before is None:
                raise NotFoundError(f"token {token_id} not found", field="token")
            tx.delete_token(token_id)
            tx.record(
                kind="token", action="delete", object_id=token_id, project=project, before=before
            )

    def ensure_admin_token(self, env_value: str | None) -> str | None:
        """Bootstrap admin access.

        With ``env_value`` (PORTWAY_ADMIN_TOKEN) that secret becomes an admin token and
        an earlier env token stops working; returns None. Without it, the first start
        generates an admin token and returns its secret for the caller to print once;
        later starts return None. Nothing is written when nothing changes.
        """
        if env_value:
            if self._read(lambda r: _env_token_current(r, env_value)):
                return None
            try:
                with self._write(_BOOTSTRAP) as tx:
                    self._ensure_env_token(tx, env_value)
            except _NothingToDo:
                pass
            return None
        if self._read(Reader.admin_token_exists):
            return None
        secret = _new_secret()
        try:
            with self._write(_BOOTSTRAP) as tx:
                if tx.admin_token_exists():  # another node won the race
                    raise _NothingToDo
                token = Token(
                    id=new_id(),
                    project=None,
                    role=Role.ADMIN,
                    description=GENERATED_TOKEN_DESCRIPTION,
                )
                self._insert(tx, token, secret, None)
        except _NothingToDo:
            return None
        return secret

    def _ensure_env_token(self, tx: Transaction, secret: str) -> None:
        if _env_token_current(tx, secret):
            raise _NothingToDo
        current = tx.token_by_hash(hash_secret(secret))
        stale = [t for t in _env_tokens(tx) if current is None or t.id != current.id]
        for token in stale:
            tx.delete_token(token.id)
        if current is None:
            token = Token(
                id=new_id(), project=None, role=Role.ADMIN, description=ENV_TOKEN_DESCRIPTION
            )
            self._insert(tx, token, secret, None, replaced=stale)
        elif not stale:
            raise _NothingToDo
        else:
            tx.record(
                kind="token", action="delete", object_id=stale[0].id, project=None, before=stale
            )

    @staticmethod
    def _insert(
        tx: Transaction,
        token: Token,
        secret: str,
        project: str | None,
        replaced: list[Token] | None = None,
    ) -> Token:
        tx.insert_token(token, hash_secret(secret))
        stored = replace(token, created_at=tx.now)
        tx.record(
            kind="token",
            action="create",
            object_id=token.id,
            project=project,
            before=replaced or None,
            after=stored,
        )
        return stored


class _NothingToDo(Exception):
    """Raised inside a bootstrap transaction to roll it back when no write is needed."""


def _env_tokens(reader: Reader) -> list[Token]:
    return [t for t in reader.list_tokens(None) if t.description == ENV_TOKEN_DESCRIPTION]


def _env_token_current(reader: Reader, secret: str) -> bool:
    """The env secret is stored and is the only env-provided token."""
    current = reader.token_by_hash(hash_secret(secret))
    if current is None or current.role is not Role.ADMIN or current.project is not None:
        return False
    return [t.id for t in _env_tokens(reader)] == [current.id]


def _now() -> datetime:
    return datetime.now(UTC)
