"""Pure parts of the proxy: model ids, prices, configuration, usage extraction, lean imports."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal

import pytest

from bedrock_billing.core.errors import InvalidInput
from bedrock_billing.core.models import normalise_model_id
from bedrock_billing.proxy.config import ConfigError, ProxyConfig
from bedrock_billing.proxy.prices import PriceConfigError, PriceTable, from_pico, to_pico
from bedrock_billing.proxy.usage import StreamUsage, Usage, from_body, from_headers

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"


@pytest.mark.parametrize(
    "given, foundation, profile",
    [
        (HAIKU, HAIKU, None),
        ("us." + HAIKU, HAIKU, "us." + HAIKU),
        ("eu." + HAIKU, HAIKU, "eu." + HAIKU),
        ("apac." + HAIKU, HAIKU, "apac." + HAIKU),
        ("global." + HAIKU, HAIKU, "global." + HAIKU),
        ("us-gov." + HAIKU, HAIKU, "us-gov." + HAIKU),
        (f"arn:aws:bedrock:us-east-1::foundation-model/{HAIKU}", HAIKU, None),
        (
            f"arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.{HAIKU}",
            HAIKU,
            "eu." + HAIKU,
        ),
    ],
)
def test_model_ids_normalise_to_their_foundation_model(given, foundation, profile):
    ref = normalise_model_id(given)
    assert (ref.model_id, ref.foundation_model, ref.profile) == (given, foundation, profile)


def test_opaque_arns_are_kept_whole():
    arn = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123"
    assert normalise_model_id(arn).foundation_model == arn


@pytest.mark.parametrize("bad", ["", None, 7, "has space", "x" * 3000, "arn:nope", "ünï"])
def test_bad_model_ids_are_invalid_input(bad):
    with pytest.raises(InvalidInput):
        normalise_model_id(bad)


def test_prices_are_exact_integers_of_pico_units():
    assert to_pico("0.00000025") == 250_000
    assert to_pico("0.00000000875") == 8_750
    assert to_pico("0.0000000000001") == 1  # below a pico-unit: rounded up
    assert from_pico(45_500_000) == Decimal("0.0000455")
    table = PriceTable.from_env({})
    assert table.currency == "USD" and table.get(HAIKU).output == 1_250_000


def test_price_overrides_from_env_inline_and_file(tmp_path):
    doc = {"currency": "EUR", "models": {"m.x": {"input": "0.001", "output": "0.002"}}}
    assert PriceTable.from_env({"BEDROCK_BILLING_PRICES": json.dumps(doc)}).currency == "EUR"
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    table = PriceTable.from_env({"BEDROCK_BILLING_PRICES_FILE": str(path)})
    assert table.get("m.x").cache_read == table.get("m.x").input  # falls back to input
    for bad in (
        '{"models": {"m": {"input": "abc", "output": "1"}}}',
        "[]",
        "{",
        '{"models": {"m": {"input": "1"}}}',
    ):
        with pytest.raises(PriceConfigError):
            PriceTable.from_env({"BEDROCK_BILLING_PRICES": bad})


def test_config_from_env():
    config = ProxyConfig.from_env(
        {
            "BEDROCK_BILLING_STAGE": "dev",
            "BEDROCK_BILLING_TABLE_PREFIX": "acme",
            "BEDROCK_BILLING_USAGE_TABLE": "my-usage",
            "BEDROCK_BILLING_AUTH_CACHE_TTL": "10",
            "BEDROCK_BILLING_CORS_ORIGINS": "https://a.example, https://b.example/",
            "BEDROCK_BILLING_MAX_BODY_BYTES": "1000",
            "BEDROCK_BILLING_INTEGRATION_TIMEOUT": "60",
        }
    )
    assert config.tables.customers == "acme-dev-customers"
    assert config.tables.usage == "my-usage"
    assert config.auth_cache_ttl == 10 and config.max_body_bytes == 1000
    assert config.cors_origins == ("https://a.example", "https://b.example")
    assert config.integration_timeout == 60
    with pytest.raises(ConfigError):
        ProxyConfig.from_env({"BEDROCK_BILLING_AUTH_CACHE_TTL": "soon"})


def test_usage_sources():
    headers = {"x-amzn-bedrock-input-token-count": "7", "x-amzn-bedrock-output-token-count": "9"}
    assert from_headers(headers) == Usage(7, 9)
    assert from_headers({"x-amzn-bedrock-input-token-count": "7"}) is None
    assert from_body(
        {"usage": {"inputTokens": 1, "outputTokens": 2, "cacheReadInputTokenCount": 3}}
    ) == Usage(1, 2, 3)
    assert from_body({"prompt_token_count": 4, "generation_token_count": 5}) == Usage(4, 5)
    assert from_body({"usage": {"input_tokens": -1, "output_tokens": 2}}) is None
    tracker = StreamUsage()
    tracker.observe(
        {
            "type": "message_start",
            "message": {"usage": {"input_tokens": 10, "cache_read_input_tokens": 4}},
        },
        50,
    )
    tracker.observe({"type": "message_delta", "usage": {"output_tokens": 6}}, 20)
    got = tracker.result(100)
    assert (got.input_tokens, got.output_tokens, got.cache_read_input_tokens) == (10, 6, 4)
    assert got.estimated is True


FORBIDDEN = [
    "typer",
    "rich",
    "pyathena",
    "duckdb",
    "moto",
    "bedrock_billing.cli",
    "bedrock_billing.stores",
    "bedrock_billing.services",
]


def test_handler_import_stays_lean():
    code = (
        "import sys, json; import bedrock_billing.proxy.handler; "
        f"print(json.dumps(sorted(m for m in sys.modules if any(m == f or m.startswith(f + '.') "
        f"for f in {FORBIDDEN!r}))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_a_price_given_as_a_json_number_is_refused():
    # json.load turns 0.1 into a binary float; money never goes through float.
    from bedrock_billing.proxy.prices import PriceConfigError, PriceTable

    with pytest.raises(PriceConfigError, match="as a string"):
        PriceTable.parse({"models": {"m": {"input": 0.10000000000100000001, "output": "1"}}})


def test_a_parameter_error_names_the_parameter_but_never_echoes_the_prompt():
    import boto3
    from botocore.exceptions import ParamValidationError

    from bedrock_billing.proxy.bedrock import map_error

    client = boto3.client(
        "bedrock-runtime", region_name="us-east-1",
        aws_access_key_id="x", aws_secret_access_key="y",
    )  # fmt: skip
    try:
        client.converse(modelId="m", messages=[{"role": "user", "content": "secret prompt"}])
    except ParamValidationError as exc:
        error = map_error(exc)
    assert error.status == 400 and error.code == "invalid_request"
    assert "messages[0].content" in error.message
    assert "secret prompt" not in error.message and "<class" not in error.message
