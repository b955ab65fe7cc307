"""API keys for the cloud's HTTP ingress: one per site, reviewer or operator, hashed at rest.

Keys come from the environment, never from a config file in the repository:
  EDGEWARD_CLOUD_API_KEY_FILE  a file of `ROLE NAME sha256:HEX` lines (only hashes on disk;
                               `edgeward certs api-key` prints a key and its line)
  EDGEWARD_CLOUD_API_KEYS      `ROLE:NAME:KEY,...` for development; hashed when read
With neither set, the ingress refuses to start unless development mode is asked for explicitly
(`edgeward cloud up --insecure-dev`, or EDGEWARD_CLOUD_INSECURE_DEV=1 for `serve run`), so a
cloud never runs open by accident.
A key is 32 random bytes, so a plain SHA-256 is enough: there is nothing to brute-force.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from shared.errors import ConfigError

KEY_FILE_ENV = "EDGEWARD_CLOUD_API_KEY_FILE"
KEYS_ENV = "EDGEWARD_CLOUD_API_KEYS"
INSECURE_DEV_ENV = "EDGEWARD_CLOUD_INSECURE_DEV"
Role = Literal["site", "reviewer", "admin"]
ROLES: tuple[Role, ...] = ("site", "reviewer", "admin")


@dataclass(frozen=True)
class Principal:
    """Who a request authenticated as: a site id, a reviewer's name or an operator."""

    role: Role
    name: str


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _principal(role: str, name: str, where: str) -> Principal:
    if role not in ROLES:
        raise ConfigError(f"{where}: role {role!r} is not one of {', '.join(ROLES)}")
    if not name:
        raise ConfigError(f"{where}: the {role} has no name; give `{role} NAME ...`")
    return Principal(role, name)


class ApiKeys:
    """Key hash -> principal; the plain keys are never kept."""

    def __init__(self, by_hash: dict[str, Principal]) -> None:
        self._by_hash = dict(by_hash)

    def __len__(self) -> int:
        return len(self._by_hash)

    def authenticate(self, key: str) -> Principal | None:
        return self._by_hash.get(key_hash(key)) if key else None

    @classmethod
    def parse_file(cls, path: Path) -> dict[str, Principal]:
        try:
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise ConfigError(f"API key file {path} is unreadable: {exc}") from None
        found: dict[str, Principal] = {}
        for number, raw in enumerate(lines, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            where = f"{path}:{number}"
            if len(parts) != 3 or not parts[2].startswith("sha256:") or len(parts[2]) != 71:
                raise ConfigError(
                    f"{where}: expected `ROLE NAME sha256:<64 hex>`, got {line!r}; make lines "
                    "with `edgeward certs api-key ROLE NAME`"
                )
            found[parts[2][len("sha256:") :]] = _principal(parts[0], parts[1], where)
        return found

    @classmethod
    def parse_env(cls, value: str) -> dict[str, Principal]:
        found: dict[str, Principal] = {}
        for item in filter(None, (v.strip() for v in value.split(","))):
            role, _, rest = item.partition(":")
            name, _, key = rest.partition(":")
            if not key:
                raise ConfigError(
                    f"{KEYS_ENV}: entry {role}:{name}:… has no key; write ROLE:NAME:KEY"
                )
            found[key_hash(key)] = _principal(role, name, KEYS_ENV)
        return found

    @classmethod
    def from_env(cls) -> ApiKeys | None:
        """The configured keys, or None when neither variable is set (authentication off)."""
        path, inline = os.environ.get(KEY_FILE_ENV), os.environ.get(KEYS_ENV)
        if not path and not inline:
            return None
        by_hash = cls.parse_file(Path(path)) if path else {}
        by_hash |= cls.parse_env(inline) if inline else {}
        return cls(by_hash)


class NoApiKeysError(ConfigError):
    """No API keys and no explicit development mode: the ingress would be open to anyone."""


def insecure_dev_from_env() -> bool:
    return os.environ.get(INSECURE_DEV_ENV, "").strip().lower() in ("1", "true", "yes")


def required_keys(insecure_dev: bool = False) -> ApiKeys | None:
    """The configured keys; None (every route open) only in explicit development mode.

    Raises NoApiKeysError naming what to set when there are no keys and no development mode.
    """
    keys = ApiKeys.from_env()
    if keys is not None or insecure_dev or insecure_dev_from_env():
        return keys
    raise NoApiKeysError(
        f"the cloud HTTP ingress has no API keys, so it would be open to anyone: set "
        f"{KEY_FILE_ENV} to a file of key hashes (make keys with `edgeward certs api-key site "
        f"SITE`, `... reviewer NAME`, `... admin NAME`) or {KEYS_ENV}=ROLE:NAME:KEY,...; for "
        f"development on one machine only, start it with `edgeward cloud up --insecure-dev` "
        f"(or {INSECURE_DEV_ENV}=1)"
    )


def new_key(role: str, name: str) -> tuple[str, str]:
    """A fresh key and its key-file line (the key itself is shown once and stored nowhere)."""
    principal = _principal(role, name, "api-key")
    key = secrets.token_urlsafe(32)
    return key, f"{principal.role} {principal.name} sha256:{key_hash(key)}"
