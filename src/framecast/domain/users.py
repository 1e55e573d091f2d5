"""Users, their personal workspace and API tokens (stored only as hashes)."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

# Deliberately loose (one @, something on each side, no white space): the address is an identifier here, not a
# promise of deliverability.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
TOKEN_PREFIX = "fc_"  # noqa: S105 (a prefix that makes leaked tokens easy to spot, not a secret)


@dataclass(kw_only=True)
class User:
    id: str
    email: str
    workspace_id: str
    created_at: datetime
    password_hash: str | None = None  # an argon2 hash (services/passwords.py); None: no password sign-in yet

    @classmethod
    def create(cls, *, email: str, at: datetime) -> User:
        """A new user with a personal workspace of their own (shared workspaces and roles come later)."""
        return cls(id=str(uuid.uuid4()), email=normalize_email(email), workspace_id=str(uuid.uuid4()), created_at=at)


@dataclass(kw_only=True)
class ApiToken:
    id: str
    user_id: str
    token_hash: str
    created_at: datetime
    name: str = ""


@dataclass(kw_only=True)
class WebSession:
    """A signed-in browser: the cookie holds a random token, the database only its hash."""

    id: str
    user_id: str
    token_hash: str
    created_at: datetime
    expires_at: datetime


def normalize_email(email: str) -> str:
    cleaned = email.strip().lower()
    if not _EMAIL.fullmatch(cleaned):
        raise ValueError(f"not an email address: {email!r}")
    return cleaned


def new_token() -> str:
    """Return a fresh bearer token; only its hash is ever stored."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()
