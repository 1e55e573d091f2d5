"""Browser sign-in: passwords (argon2), session cookies and the CSRF token that goes with each session.

A session token is 256 random bits held in an HttpOnly cookie; the database keeps only its SHA-256, as for API
tokens, so a stolen database signs nobody in. Cookie-authenticated writes must also carry the session's CSRF token,
an HMAC of the session token that pages render into a meta tag: another site can make the browser send the cookie,
but cannot read the page to learn the token.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from framecast.domain.errors import DomainError, NotFound
from framecast.domain.users import User, WebSession, hash_token, new_token, normalize_email
from framecast.ports import Clock, UnitOfWorkFactory

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # argon2 takes any length; this only stops someone making us hash megabytes


class WeakPassword(DomainError):
    code = "bad_request"


@dataclass(frozen=True, slots=True)
class SignedIn:
    user: User
    token: str  # the cookie's value; shown once, never stored


class Sessions:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, secret_key: str, ttl: timedelta) -> None:
        self._uow = uow
        self._clock = clock
        self._csrf_key = hashlib.sha256(b"framecast.csrf:" + secret_key.encode()).digest()
        self._ttl = ttl
        # argon2id with the library's RFC 9106 "low memory" defaults (64 MiB, 3 passes): about 50 ms here.
        self._hasher = PasswordHasher()

    @cached_property
    def _decoy(self) -> str:
        """Verified when the email is unknown, so both answers take as long and do not tell who has an account.
        Made on the first sign-in, not at start-up: every process (CLI commands, workers) builds this service."""
        return self._hasher.hash("framecast decoy password")

    @property
    def ttl(self) -> timedelta:
        return self._ttl

    async def set_password(self, *, email: str, password: str) -> User:
        """Give the user with `email` a (new) password; their browser sessions are signed out."""
        if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
            raise WeakPassword(f"a password needs {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters")
        password_hash = await anyio.to_thread.run_sync(self._hasher.hash, password)
        async with self._uow() as tx:
            user = await tx.users.by_email(normalize_email(email))
            if user is None:
                raise NotFound("user", email)
            await tx.users.set_password_hash(user.id, password_hash)
            await tx.users.delete_sessions_of(user.id)
            await tx.commit()
        user.password_hash = password_hash
        return user

    async def sign_in(self, *, email: str, password: str) -> SignedIn | None:
        """A new session for the user with this email and password; None if either is wrong."""
        try:
            address = normalize_email(email)
        except ValueError:
            return None
        async with self._uow() as tx:
            user = await tx.users.by_email(address)
        if user is not None and user.password_hash:
            stored = user.password_hash
        else:
            stored = await anyio.to_thread.run_sync(lambda: self._decoy)  # hashed once, off the event loop
        if not await anyio.to_thread.run_sync(self._verify, stored, password[:MAX_PASSWORD_LENGTH]):
            return None
        if user is None or not user.password_hash:
            return None
        if self._hasher.check_needs_rehash(user.password_hash):
            await self.set_password(email=address, password=password)
        return await self.open(user)

    async def open(self, user: User) -> SignedIn:
        """Start a session for `user` (after checking who they are some other way, e.g. an API token)."""
        token = new_token()
        now = self._clock.now()
        session = WebSession(
            id=str(uuid.uuid4()),
            user_id=user.id,
            token_hash=hash_token(token),
            created_at=now,
            expires_at=now + self._ttl,
        )
        async with self._uow() as tx:
            await tx.users.add_session(session)
            await tx.commit()
        return SignedIn(user=user, token=token)

    async def user(self, token: str) -> User | None:
        """Who the session token signs in, if it is known and unexpired."""
        async with self._uow() as tx:
            return await tx.users.by_session_hash(hash_token(token), at=self._clock.now())

    async def close(self, token: str) -> None:
        async with self._uow() as tx:
            await tx.users.delete_session(hash_token(token))
            await tx.commit()

    async def sweep(self) -> int:
        """Forget expired sessions; returns how many."""
        async with self._uow() as tx:
            removed = await tx.users.delete_expired_sessions(at=self._clock.now())
            await tx.commit()
        return removed

    def csrf_token(self, session_token: str) -> str:
        return hmac.new(self._csrf_key, session_token.encode(), hashlib.sha256).hexdigest()

    def csrf_valid(self, session_token: str, candidate: str | None) -> bool:
        return candidate is not None and hmac.compare_digest(self.csrf_token(session_token), candidate)

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
