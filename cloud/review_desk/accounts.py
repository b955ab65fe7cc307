"""Review-desk accounts and sessions on the cloud store's database (migration 3).

Passwords are kept as scrypt hashes (stdlib, memory-hard); a session is a random token in an
HttpOnly cookie whose SHA-256 is the row key, so a copy of the database opens no session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from shared.errors import EdgewardError

ROLES = ("reviewer", "admin")
SESSION_TTL_S = 8 * 3600.0  # one working shift
MIN_PASSWORD = 10
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# scrypt cost: ~50 ms and 16 MiB per login on one core, fine for people, slow for a guesser
_N, _R, _P = 2**14, 8, 1


class AccountError(EdgewardError):
    """An account that cannot be created as asked (bad name, role or password; duplicate)."""


@dataclass(frozen=True)
class User:
    name: str
    role: str


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str
    expires_at: float


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(base64.b64decode(digest)),
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# Checked against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = hash_password(secrets.token_hex(8))


class Accounts:
    def __init__(self, engine: Engine, session_ttl_s: float = SESSION_TTL_S) -> None:
        self.engine = engine
        self.session_ttl_s = session_ttl_s

    def add(self, name: str, role: str, password: str) -> User:
        if not _NAME.match(name):
            raise AccountError(
                f"user name {name!r} is not allowed; use 1-64 letters, digits, '.', '_' or '-'"
            )
        if role not in ROLES:
            raise AccountError(f"role {role!r} is not one of {', '.join(ROLES)}")
        if len(password) < MIN_PASSWORD:
            raise AccountError(
                f"password for {name!r} has {len(password)} characters; use at least {MIN_PASSWORD}"
            )
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO desk_users (name, role, password_hash, created_at) "
                        "VALUES (:n, :r, :h, :t)"
                    ),
                    {"n": name, "r": role, "h": hash_password(password), "t": time.time()},
                )
        except IntegrityError:
            raise AccountError(f"user {name!r} already exists; pick another name") from None
        return User(name, role)

    def users(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT name, role FROM desk_users ORDER BY name")).all()
        return [User(str(n), str(r)) for n, r in rows]

    def authenticate(self, name: str, password: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                text("SELECT role, password_hash FROM desk_users WHERE name = :n"), {"n": name}
            ).first()
        if row is None:
            verify_password(password, _DUMMY_HASH)
            return None
        return User(name, str(row[0])) if verify_password(password, str(row[1])) else None

    def open_session(self, user: User) -> tuple[str, Session]:
        """A new session for `user`: the cookie token (shown once) and the session."""
        token = secrets.token_urlsafe(32)
        now = time.time()
        session = Session(user, secrets.token_urlsafe(32), now + self.session_ttl_s)
        with self.engine.begin() as conn:
            # expired rows of anyone go here, so the table does not grow without bound
            conn.execute(text("DELETE FROM desk_sessions WHERE expires_at < :t"), {"t": now})
            conn.execute(
                text(
                    "INSERT INTO desk_sessions (token_hash, user_name, csrf, created_at, "
                    "expires_at) VALUES (:h, :u, :c, :t, :e)"
                ),
                {
                    "h": _token_hash(token),
                    "u": user.name,
                    "c": session.csrf,
                    "t": now,
                    "e": session.expires_at,
                },
            )
        return token, session

    def session(self, token: str) -> Session | None:
        if not token:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT s.csrf, s.expires_at, u.name, u.role FROM desk_sessions s "
                    "JOIN desk_users u ON u.name = s.user_name WHERE s.token_hash = :h"
                ),
                {"h": _token_hash(token)},
            ).first()
        if row is None or float(row[1]) < time.time():
            return None
        return Session(User(str(row[2]), str(row[3])), str(row[0]), float(row[1]))

    def close_session(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text("DELETE FROM desk_sessions WHERE token_hash = :h"), {"h": _token_hash(token)}
            )
