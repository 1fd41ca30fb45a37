"""API keys with roles and tenants.

A key belongs to one tenant and holds roles: ``reader`` (ask for decisions, read the models,
alerts and experiments), ``writer`` (post events), ``reviewer`` (review models; it reads what it
reviews, so it holds ``reader`` too) and ``admin`` (everything). A request names its key in
the ``X-API-Key`` header; a missing or unknown key is a 401, a key without the role the route
needs a 403, and every route reads only its key's tenant, so another tenant's data is never
reachable (a tenant the service does not hold is a 404).

Keys come from a JSON file (``SHELFWISE_API_KEYS_FILE``, else the workspace's
``api_keys.json``): a list of ``{"name": ..., "key": ..., "tenant": ..., "roles": [...]}``,
managed with ``shelfwise keys add|list|remove``. A key's name is who acts with it: the
lifecycle records it as the reviewer, proposer or approver. Keys are compared by their SHA-256
digests, in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException, Request, Security
from fastapi.security import APIKeyHeader

if TYPE_CHECKING:
    from shelfwise.settings import Settings

ROLES = ("reader", "writer", "reviewer", "admin")
# what a role holds beside itself: a reviewer-only key could not list what it is to review
IMPLIED = {"reviewer": ("reader",), "admin": ROLES}
HEADER = "X-API-Key"
# Declared as the schema's security scheme, so /docs offers "Authorize" for the key and sends it
# with every request it tries; missing or unknown keys are answered by ``requires`` (401).
API_KEY = APIKeyHeader(
    name=HEADER,
    auto_error=False,
    description="An API key (roles: reader, writer, reviewer, admin).",
)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's tenant and roles (never the key itself)."""

    name: str
    tenant: str
    roles: frozenset[str]

    def may(self, role: str) -> bool:
        return any(role == held or role in IMPLIED.get(held, ()) for held in self.roles)


class KeyRing:
    """The service's keys, held as digests."""

    def __init__(self, entries: Iterable[dict[str, Any]]) -> None:
        self._by_digest: dict[bytes, Principal] = {}
        for position, entry in enumerate(entries):
            where = f"API key #{position + 1}"
            key, tenant = entry.get("key"), entry.get("tenant")
            if not isinstance(key, str) or len(key) < 16:
                raise ValueError(f"{where}: 'key' must be a string of at least 16 characters")
            if not isinstance(tenant, str) or not tenant:
                raise ValueError(f"{where}: 'tenant' must be a non-empty string")
            roles = frozenset(entry.get("roles", ()))
            unknown = sorted(roles - set(ROLES))
            if not roles or unknown:
                raise ValueError(f"{where}: roles must be some of {list(ROLES)}, got {unknown}")
            name = str(entry.get("name", f"key{position + 1}"))
            self._by_digest[_digest(key)] = Principal(name, tenant, roles)

    @classmethod
    def from_file(cls, path: Path | str) -> KeyRing:
        return cls(_file_entries(Path(path)))

    def take(self, other: KeyRing) -> None:
        """Accept ``other``'s keys from now on, and no others (one assignment: a request
        checks its key against the old keys or the new, never a mix)."""
        self._by_digest = other._by_digest

    def principal(self, key: str | None) -> Principal | None:
        if not key:
            return None
        digest = _digest(key)
        for known, principal in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                return principal
        return None


def keys_file(settings: Settings) -> Path:
    """Where the service's keys live: ``api_keys_file``, else the workspace's api_keys.json."""
    return Path(settings.api_keys_file or settings.workspace / "api_keys.json")


def new_key() -> str:
    return "sw-" + secrets.token_urlsafe(24)


def read_keys(path: Path) -> list[dict[str, Any]]:
    """The file's entries, each with its name (``keyN`` where it has none), checked as the
    service checks them; none where there is no file yet."""
    if not path.exists():
        return []
    entries = _file_entries(path)
    KeyRing(entries)
    return [{**e, "name": str(e.get("name", f"key{i + 1}"))} for i, e in enumerate(entries)]


def _file_entries(path: Path) -> list[dict[str, Any]]:
    """The keys file's JSON list, unchecked; a ValueError naming the file where it is none."""
    try:
        entries = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"API keys file {path}: {error}") from error
    if not isinstance(entries, list):
        raise ValueError(f"API keys file {path}: expected a JSON list of keys")
    return entries


def write_keys(path: Path, entries: list[dict[str, Any]]) -> None:
    """Replace the file with ``entries``, checked first, readable by its owner alone."""
    KeyRing(entries)
    names = [str(e["name"]) for e in entries]
    if len(set(names)) < len(names):
        raise ValueError(f"two keys may not share a name: {sorted(names)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(path.name + ".new")
    staged.unlink(missing_ok=True)  # a leftover of an interrupted write
    staged.touch(mode=0o600)
    staged.write_text(json.dumps(entries, indent=2))
    staged.replace(path)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def requires(role: str) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency: the caller's principal, if its key holds ``role``."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; known: {list(ROLES)}")

    # async: no thread hop for a dict lookup (FastAPI runs a plain def in its thread pool)
    async def check(request: Request, x_api_key: str | None = Security(API_KEY)) -> Principal:
        ring: KeyRing = request.app.state.keys
        principal = ring.principal(x_api_key)
        if principal is None:
            raise HTTPException(401, f"a valid API key is needed in the {HEADER} header")
        if not principal.may(role):
            raise HTTPException(403, f"this key may not do that: it needs the {role} role")
        return principal

    return check
