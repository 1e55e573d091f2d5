"""Media tokens: what they grant, how long they live, and that nothing else passes for one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from itsdangerous import URLSafeSerializer

from framecast.adapters.clock import FakeClock
from framecast.services.media_links import SALT, InvalidMediaLink, MediaSigner
from framecast.services.tickets import WS_TICKET, Grant, Tickets

START = datetime(2026, 1, 1, tzinfo=UTC)  # a whole quarter hour, so expiries fall on bucket boundaries from here
HOUR = timedelta(hours=1)
SECRET = "s3cret"


def signer(clock: FakeClock, *, secret: str = SECRET, ttl: timedelta = HOUR) -> MediaSigner:
    return MediaSigner(secret_key=secret, clock=clock, ttl=ttl)


def test_a_token_grants_one_generation_of_one_recording_until_it_expires() -> None:
    clock = FakeClock(START)
    token = signer(clock).sign(recording_id="rec-1", generation="g7")
    grant = signer(clock).verify(token)
    assert (grant.recording_id, grant.generation, grant.expires_at) == ("rec-1", "g7", START + HOUR)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


@pytest.mark.parametrize(
    ("elapsed", "expires_after_start"),
    [
        (timedelta(0), HOUR),
        (timedelta(seconds=1), HOUR + timedelta(minutes=15)),
        (timedelta(minutes=14, seconds=59), HOUR + timedelta(minutes=15)),
        (timedelta(minutes=15), HOUR + timedelta(minutes=15)),
        (timedelta(minutes=15, seconds=1), HOUR + timedelta(minutes=30)),
    ],
)
def test_expiry_is_rounded_up_to_a_quarter_of_the_lifetime(elapsed: timedelta, expires_after_start: timedelta) -> None:
    clock = FakeClock(START + elapsed)
    assert signer(clock).expires_at() == START + expires_after_start


def test_the_same_url_is_handed_out_within_a_bucket_and_a_new_one_after() -> None:
    clock = FakeClock(START + timedelta(seconds=1))
    first = signer(clock).sign(recording_id="rec-1", generation="g1")
    clock.advance(timedelta(minutes=14))
    again = signer(clock).sign(recording_id="rec-1", generation="g1")
    clock.advance(timedelta(minutes=1))
    later = signer(clock).sign(recording_id="rec-1", generation="g1")
    assert first == again != later


def test_every_token_lives_at_least_the_lifetime_and_at_most_a_quarter_more() -> None:
    clock = FakeClock(START + timedelta(seconds=7))
    for _ in range(200):
        clock.advance(timedelta(seconds=37))
        lifetime = signer(clock).verify(signer(clock).sign(recording_id="r", generation="g")).expires_at - clock.now()
        assert HOUR <= lifetime <= HOUR * 1.25


def test_a_tiny_lifetime_still_rounds_to_whole_seconds() -> None:
    clock = FakeClock(START + timedelta(milliseconds=200))
    assert signer(clock, ttl=timedelta(seconds=2)).expires_at() == START + timedelta(seconds=3)


def test_an_expired_token_is_refused_and_says_so() -> None:
    clock = FakeClock(START)
    token = signer(clock).sign(recording_id="rec-1", generation="g1")
    clock.advance(HOUR - timedelta(seconds=1))
    signer(clock).verify(token)
    clock.advance(timedelta(seconds=1))
    with pytest.raises(InvalidMediaLink, match="expired"):
        signer(clock).verify(token)


def test_tampered_foreign_and_malformed_tokens_are_refused() -> None:
    clock = FakeClock(START)
    token = signer(clock).sign(recording_id="rec-1", generation="g1")
    payload, _, signature = token.rpartition(".")
    other = signer(clock).sign(recording_id="rec-2", generation="g1")
    candidates = [
        # The first character of the signature: the last one's low bits are base64 padding.
        payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:],
        other.rpartition(".")[0] + "." + signature,  # another recording's payload under this signature
        signer(clock, secret="another server").sign(recording_id="rec-1", generation="g1"),
        Tickets(secret_key=SECRET, clock=clock).issue(WS_TICKET, Grant(user_id="u", recording_id="rec-1")),
        URLSafeSerializer(SECRET, salt=SALT).dumps(["rec-1", "g1"]),  # signed, but not the shape of a grant
        URLSafeSerializer(SECRET, salt=SALT).dumps(["rec-1", "", 4_000_000_000]),
        "",
        "not-a-token",
    ]
    for candidate in candidates:
        with pytest.raises(InvalidMediaLink):
            signer(clock).verify(candidate)


def test_invalid_media_links_are_not_found() -> None:
    assert InvalidMediaLink("x").code == "not_found"


def test_a_lifetime_that_is_not_positive_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        MediaSigner(secret_key="k", clock=FakeClock(START), ttl=timedelta(0))
