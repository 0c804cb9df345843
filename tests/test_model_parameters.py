"""A customer's model parameters: the stored map read strictly, the operator's changes, and
their effect on each kind of prepared Bedrock call (defaults fill gaps, the cap holds)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from bedrock_billing.core.errors import InvalidInput
from bedrock_billing.core.model_parameters import (
    ModelParameters,
    read_model_parameters,
    update,
)
from bedrock_billing.proxy.call import CONVERSE, COUNT_TOKENS, INVOKE, Call
from bedrock_billing.proxy.errors import ProxyError
from bedrock_billing.proxy.parameters import apply

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
CAP = ModelParameters(max_tokens=200, max_tokens_cap=1000, temperature=Decimal("0.2"))
CLAMP = ModelParameters(max_tokens_cap=1000, on_cap="clamp")


def _invoke(body: dict, model=HAIKU, policy=CAP) -> dict:
    params = {"modelId": model, "body": json.dumps(body).encode()}
    out = apply(Call(INVOKE, model), params, model, policy)
    return json.loads(out["body"])


def _converse(config: dict | None, policy=CAP, **extra) -> dict:
    params = {"modelId": HAIKU, "messages": [], **extra}
    if config is not None:
        params["inferenceConfig"] = config
    return apply(Call(CONVERSE, HAIKU), params, HAIKU, policy)


def test_defaults_fill_only_what_the_request_left_out():
    assert _converse(None)["inferenceConfig"] == {"maxTokens": 200, "temperature": 0.2}
    assert _converse({"maxTokens": 50, "temperature": 0.9})["inferenceConfig"] == {
        "maxTokens": 50,
        "temperature": 0.9,
    }
    body = _invoke({"anthropic_version": "bedrock-2023-05-31", "messages": []})
    assert body["max_tokens"] == 200 and body["temperature"] == 0.2


def test_a_max_tokens_above_the_cap_is_refused_or_clamped_as_configured():
    with pytest.raises(ProxyError) as refused:
        _converse({"maxTokens": 4096})
    assert refused.value.status == 400 and refused.value.code == "max_tokens_above_cap"
    with pytest.raises(ProxyError):
        _invoke({"max_tokens": 1001, "messages": []})
    assert _converse({"maxTokens": 4096}, CLAMP)["inferenceConfig"]["maxTokens"] == 1000
    assert _invoke({"max_tokens": 5000, "messages": []}, policy=CLAMP)["max_tokens"] == 1000
    # A cap alone bounds a request that sets nothing (the model's own default may be higher).
    assert _converse(None, CLAMP)["inferenceConfig"] == {"maxTokens": 1000}


@pytest.mark.parametrize(
    ("model", "body", "path"),
    [
        ("meta.llama3-8b-instruct-v1:0", {"prompt": "x", "max_gen_len": 4000}, ["max_gen_len"]),
        ("mistral.mistral-7b-instruct-v0:2", {"prompt": "x", "max_tokens": 4000}, ["max_tokens"]),
        (
            "amazon.titan-text-express-v1",
            {"inputText": "x", "textGenerationConfig": {"maxTokenCount": 4000}},
            ["textGenerationConfig", "maxTokenCount"],
        ),
        (
            "amazon.nova-pro-v1:0",
            {"messages": [], "inferenceConfig": {"max_new_tokens": 4000}},
            ["inferenceConfig", "max_new_tokens"],
        ),
    ],
)
def test_each_model_familys_own_token_field_is_held_to_the_cap(model, body, path):
    out = _invoke(body, model, CLAMP)
    for name in path:
        out = out[name]
    assert out == 1000


def test_a_body_the_proxy_cannot_read_is_refused_only_when_capped():
    params = {"modelId": "cohere.command-r-v1:0", "body": b'{"message": "x"}'}
    with pytest.raises(ProxyError) as refused:
        apply(Call(INVOKE, "m"), params, "cohere.command-r-v1:0", CLAMP)
    assert refused.value.code == "max_tokens_cap_unenforceable"
    only_defaults = ModelParameters(temperature=Decimal("0.5"))
    assert apply(Call(INVOKE, "m"), params, "cohere.command-r-v1:0", only_defaults) == params


def test_a_guardrail_is_added_unless_the_request_names_one():
    policy = ModelParameters(guardrail_id="gr1abc", guardrail_version="2")
    assert _converse(None, policy)["guardrailConfig"] == {
        "guardrailIdentifier": "gr1abc",
        "guardrailVersion": "2",
    }
    own = {"guardrailIdentifier": "mine", "guardrailVersion": "1"}
    assert _converse(None, policy, guardrailConfig=own)["guardrailConfig"] == own
    params = {"modelId": HAIKU, "body": b"{}"}
    out = apply(Call(INVOKE, HAIKU), params, HAIKU, policy)
    assert (out["guardrailIdentifier"], out["guardrailVersion"]) == ("gr1abc", "2")
    assert out["body"] == b"{}"  # nothing else to change: the body is passed as sent


def test_count_tokens_and_customers_without_parameters_are_untouched():
    params = {"modelId": HAIKU, "input": {}}
    assert apply(Call(COUNT_TOKENS, HAIKU), params, HAIKU, CAP) is params
    assert apply(Call(CONVERSE, HAIKU), params, HAIKU, None) is params


def test_operator_changes_are_validated_and_unset_clears():
    params = update(None, max_tokens="200", max_tokens_cap="1000", temperature="0.3")
    assert params.to_item() == {
        "max_tokens": 200, "max_tokens_cap": 1000, "on_cap": "refuse", "temperature": "0.3",
    }  # fmt: skip
    params = update(params, on_cap="clamp", guardrail="abc123:DRAFT", temperature="unset")
    assert params.temperature is None and params.guardrail_version == "DRAFT"
    cleared = update(params, max_tokens="unset", max_tokens_cap="unset", guardrail="unset")
    assert cleared.to_item() is None  # nothing left: the attribute is removed
    for bad in (
        {"max_tokens": "0"},
        {"max_tokens": "1.5"},
        {"temperature": "1.5"},
        {"on_cap": "ignore", "max_tokens_cap": "10"},
        {"max_tokens": "500", "max_tokens_cap": "100"},
        {"guardrail": "abc123"},
        {"guardrail": "ABC:1"},
    ):
        with pytest.raises(InvalidInput):
            update(None, **bad)


def test_a_damaged_stored_map_is_named_not_served():
    good = {"max_tokens_cap": 100, "on_cap": "clamp", "temperature": "0.5"}
    assert read_model_parameters(good)[0] == ModelParameters(
        max_tokens_cap=100, on_cap="clamp", temperature=Decimal("0.5")
    )
    for bad in (
        "200",
        {"max_tokens": "200"},
        {"temperature": 0.5},
        {"max_tokens_cap": 100, "on_cap": "maybe"},
        {"cap": 1},
    ):
        params, problem = read_model_parameters(bad)
        assert params is None and problem.startswith("model_parameters")
