import hashlib
import subprocess

import pytest

from bedrock_billing.core.errors import InvalidInput
from bedrock_billing.core.tokens import (
    MIN_ENTROPY_BITS,
    display_prefix,
    estimate_entropy_bits,
    generate_token,
    hash_token,
    same_hash,
    validate_supplied_token,
)


def test_generated_tokens_are_unique_strong_and_prefixed():
    tokens = {generate_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert token.startswith("bbk_")
        assert estimate_entropy_bits(token) >= MIN_ENTROPY_BITS
        validate_supplied_token(token)


def test_hash_is_sha256_hex_of_the_token():
    assert hash_token("abc") == hashlib.sha256(b"abc").hexdigest()
    assert same_hash(hash_token("abc"), hash_token("abc"))
    assert not same_hash(hash_token("abc"), hash_token("abd"))


def test_display_prefix_reveals_only_the_start():
    token = generate_token()
    prefix = display_prefix(token)
    assert prefix.endswith("…") and len(prefix) == len("bbk_") + 8 + 1
    assert token.startswith(prefix[:-1])


def test_openssl_base64_token_is_accepted():
    out = subprocess.run(
        ["openssl", "rand", "-base64", "32"], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        pytest.skip("openssl not available")
    token = out.stdout.strip()
    assert validate_supplied_token(token) == token


@pytest.mark.parametrize(
    "weak",
    [
        "password123",
        "a" * 64,
        "abababababababababababababababab",
        "0123456789012345678901234567890123456789",
        "correct horse battery staple",
        "",
        "short-but-random-Xq9",
    ],
)
def test_weak_or_malformed_tokens_are_refused(weak):
    with pytest.raises(InvalidInput):
        validate_supplied_token(weak)


def test_refusal_message_never_echoes_the_token():
    try:
        validate_supplied_token("hunter2hunter2hunter2hunter2")
    except InvalidInput as exc:
        assert "hunter2" not in exc.message


def test_weak_token_message_never_shows_negative_zero_bits():
    with pytest.raises(InvalidInput) as info:
        validate_supplied_token("a" * 44)
    assert "about 0 bits" in str(info.value)
