"""Users and API tokens: how an email is recognised and how a token is stored."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from framecast.domain.users import TOKEN_PREFIX, User, hash_token, new_token, normalize_email

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("alice@example.com", "alice@example.com"),
        ("  Alice@Example.COM \n", "alice@example.com"),
        ("BOB+video@Mail.Example.org", "bob+video@mail.example.org"),
    ],
)
def test_emails_are_trimmed_and_lowercased(given: str, stored: str) -> None:
    assert normalize_email(given) == stored


@pytest.mark.parametrize(
    "given", ["", "   ", "alice", "alice.example.com", "@example.com", "alice@", "al ice@example.com"]
)
def test_what_is_not_an_email_is_refused(given: str) -> None:
    with pytest.raises(ValueError, match="not an email address") as raised:
        normalize_email(given)
    assert repr(given) in str(raised.value)


def test_a_new_user_gets_a_normalized_email_and_a_workspace_of_their_own() -> None:
    alice = User.create(email=" Alice@Example.com", at=T0)
    bob = User.create(email="bob@example.com", at=T0)

    assert alice.email == "alice@example.com"
    assert alice.created_at == T0
    assert len({alice.id, alice.workspace_id, bob.id, bob.workspace_id}) == 4


def test_tokens_are_prefixed_and_url_safe() -> None:
    tokens = [new_token() for _ in range(100)]

    assert TOKEN_PREFIX == "fc_"
    assert len(set(tokens)) == 100
    for token in tokens:
        assert re.fullmatch(r"fc_[A-Za-z0-9_-]{43}", token)  # 32 random bytes, base64url without padding


def test_hash_token_is_deterministic_and_distinct_per_token() -> None:
    token, other = new_token(), new_token()

    assert hash_token(token) == hash_token(token)
    assert hash_token(token) != hash_token(other)
    assert re.fullmatch(r"[0-9a-f]{64}", hash_token(token))
    assert token not in hash_token(token)


def test_hash_token_is_stable_across_releases() -> None:
    # Stored hashes must keep matching after an upgrade: pin the SHA-256 hex digest.
    assert hash_token("fc_example") == "3326da0ec88305155511b7bc1711f54065445130f0e5b192b202c4865a1c9ab5"


@pytest.mark.parametrize("bad", ["a@b@c", "a b@c", "a@b\tc", "@b", "a@", ""])
def test_addresses_with_more_or_less_than_one_at_or_with_white_space_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not an email address"):
        normalize_email(bad)
