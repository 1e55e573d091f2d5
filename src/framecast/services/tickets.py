"""Signed, short-lived capabilities: WebSocket tickets and upload URLs bound to one recording."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.timed import TimestampSigner

from framecast.domain.errors import DomainError
from framecast.ports import Clock


class InvalidTicket(DomainError):
    """The ticket was tampered with, made for something else, or has expired."""

    code = "unauthorized"


@dataclass(frozen=True, slots=True)
class Grant:
    """What a valid ticket allows: acting as `user_id` on `recording_id`."""

    user_id: str
    recording_id: str


class Tickets:
    """Issue and verify tickets with itsdangerous; the purpose is the salt, so a ticket works for one thing only."""

    def __init__(self, *, secret_key: str, clock: Clock) -> None:
        self._secret = secret_key
        self._clock = clock

    def issue(self, purpose: str, grant: Grant) -> str:
        return self._serializer(purpose).dumps([grant.user_id, grant.recording_id])

    def verify(self, purpose: str, ticket: str, *, max_age: timedelta) -> Grant:
        """Return the grant inside `ticket`; raises InvalidTicket. Callers still check the recording exists."""
        try:
            user_id, recording_id = self._serializer(purpose).loads(ticket, max_age=int(max_age.total_seconds()))
        except SignatureExpired as exc:
            raise InvalidTicket("the ticket has expired; ask for a new one") from exc
        except (BadSignature, ValueError, TypeError) as exc:
            raise InvalidTicket("the ticket is not valid") from exc
        return Grant(user_id=str(user_id), recording_id=str(recording_id))

    def expires_at(self, *, ttl: timedelta) -> datetime:
        return self._clock.now() + ttl

    def _serializer(self, purpose: str) -> URLSafeTimedSerializer:
        clock = self._clock

        class _ClockSigner(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(clock.now().timestamp())

        return URLSafeTimedSerializer(self._secret, salt=f"framecast.{purpose}", signer=_ClockSigner)


WS_TICKET = "ws-ticket"
UPLOAD_TICKET = "upload-ticket"
