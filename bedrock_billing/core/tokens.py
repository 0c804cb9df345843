"""Bearer tokens: generation, hashing, display prefixes and an entropy check.

A token is shown once and never stored: tables keep its SHA-256 hex digest (the lookup
key) and a short display prefix. Comparisons of secrets are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections import Counter

from .errors import InvalidInput

TOKEN_PREFIX = "bbk_"
"""Generated tokens start with this, so a leaked one is recognisable (as GitHub's ``ghp_``)."""
TEST_TOKEN_PREFIX = "bbk_test_"
"""Test keys' tokens start with this (recognisable); the test flag itself is on the key record."""
GENERATED_BYTES = 32  # 256 bits from the OS's CSPRNG
MIN_ENTROPY_BITS = 128
MIN_LENGTH = 22
MAX_LENGTH = 512
DISPLAY_CHARS = 8


def generate_token(test: bool = False) -> str:
    """A new token: ``bbk_`` (``bbk_test_`` for a test key) and 256 random bits, URL-safe
    base64 without padding."""
    return (TEST_TOKEN_PREFIX if test else TOKEN_PREFIX) + secrets.token_urlsafe(GENERATED_BYTES)


def hash_token(token: str) -> str:
    """The lookup key of a token: SHA-256 of its UTF-8 bytes, lower-case hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def display_prefix(token: str) -> str:
    """A short, non-secret hint to tell tokens apart: its first characters and an ellipsis."""
    prefix = TEST_TOKEN_PREFIX if token.startswith(TEST_TOKEN_PREFIX) else TOKEN_PREFIX
    body = token[len(prefix) :] if token.startswith(prefix) else token
    head = token[: len(token) - len(body)] + body[:DISPLAY_CHARS]
    return head + "…"


def same_hash(a: str, b: str) -> bool:
    """Constant-time comparison of two token hashes."""
    return hmac.compare_digest(a.encode(), b.encode())


def _alphabet_size(token: str) -> int:
    size = 0
    if any(c.islower() for c in token):
        size += 26
    if any(c.isupper() for c in token):
        size += 26
    if any(c.isdigit() for c in token):
        size += 10
    others = {c for c in token if not c.isalnum()}
    if others:
        size += max(len(others), 2) if len(others) < 4 else 32
    return max(size, 1)


def estimate_entropy_bits(token: str) -> float:
    """A conservative estimate of the bits of randomness in ``token``.

    The smallest of three figures: length times log2 of the character classes it uses (what
    a brute force over that alphabet needs); length times the Shannon entropy of its own
    character frequencies (which punishes repetition such as ``aaaa...``); and the same over
    the steps between neighbouring characters (which punishes runs such as ``0123...``).
    ``openssl rand -base64 32`` (44 characters) scores about 200 bits; a 12-character
    password scores under 80.
    """
    if not token:
        return 0.0
    n = len(token)
    by_alphabet = n * math.log2(_alphabet_size(token))
    steps = [ord(b) - ord(a) for a, b in zip(token, token[1:], strict=False)]
    return min(by_alphabet, n * _shannon(token), n * _shannon(steps) if steps else 0.0)


def _shannon(symbols) -> float:
    counts = Counter(symbols)
    total = sum(counts.values())
    return -sum((c / total) * math.log2(c / total) for c in counts.values())


def validate_supplied_token(token: str) -> str:
    """Accept an operator-supplied token only if it is strong enough; return it unchanged."""
    if not isinstance(token, str) or not token:
        raise InvalidInput("token is empty")
    if token != token.strip() or any(c.isspace() for c in token):
        raise InvalidInput("token must not contain whitespace")
    if not token.isprintable() or not token.isascii():
        raise InvalidInput("token must be printable ASCII")
    if len(token) > MAX_LENGTH:
        raise InvalidInput(f"token is longer than {MAX_LENGTH} characters")
    bits = estimate_entropy_bits(token)
    if len(token) < MIN_LENGTH or bits < MIN_ENTROPY_BITS:
        shown = max(0, round(bits))  # an int: a one-symbol token's -0.0 bits would print "-0"
        raise InvalidInput(
            f"token is too weak (about {shown} bits of entropy, {MIN_ENTROPY_BITS} needed): "
            "omit --token to have one generated, or use `openssl rand -base64 32`"
        )
    return token
