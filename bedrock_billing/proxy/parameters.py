"""A customer's model parameters applied to a prepared Bedrock call (core/model_parameters).

Runs after ``bedrock.prepare`` (the request is valid) and before admission (a refusal
costs the customer nothing): fills in ``max_tokens``, ``temperature`` and a guardrail the
request left out, and holds ``max_tokens`` to the cap (refused with
``max_tokens_above_cap``, or lowered, as the customer is configured). Every wire API is a
Converse or an InvokeModel call by then, so one function covers them all:

- Converse / ConverseStream: ``inferenceConfig.maxTokens`` / ``temperature`` and
  ``guardrailConfig``.
- InvokeModel (and its stream): the guardrail as ``guardrailIdentifier`` /
  ``guardrailVersion``; the token limit and temperature inside the model's own JSON body,
  whose field names depend on the model family (Bedrock's "Inference request parameters"
  pages): Anthropic and Mistral ``max_tokens``, Meta Llama ``max_gen_len``, Amazon Titan
  ``textGenerationConfig.maxTokenCount``, Amazon Nova ``inferenceConfig.max_new_tokens``
  (or ``maxTokens``). A body of another family cannot be held to a cap: with a cap set it
  is refused (use Converse), without one it passes unchanged.
- CountTokens is never touched (nothing is generated).

A request that sets a parameter keeps its own value (a default only fills a gap); the cap
alone overrides the request.
"""

from __future__ import annotations

import json

from ..core.model_parameters import ModelParameters
from .call import CONVERSE, INVOKE, Call
from .errors import ProxyError, bad_request

ABOVE_CAP = "max_tokens_above_cap"

# family: (path of the token limit, path of the temperature) in an InvokeModel body
_FAMILIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "anthropic.": (("max_tokens",), ("temperature",)),
    "mistral.": (("max_tokens",), ("temperature",)),
    "meta.": (("max_gen_len",), ("temperature",)),
    "amazon.titan-text": (
        ("textGenerationConfig", "maxTokenCount"),
        ("textGenerationConfig", "temperature"),
    ),
    "amazon.nova": (("inferenceConfig", "max_new_tokens"), ("inferenceConfig", "temperature")),
}
_NOVA_ALTERNATIVE = ("inferenceConfig", "maxTokens")


def _family(foundation_model: str):
    for prefix, paths in _FAMILIES.items():
        if foundation_model.startswith(prefix):
            return paths
    return None


def _get(body: dict, path: tuple[str, ...]):
    node = body
    for name in path[:-1]:
        node = node.get(name)
        if not isinstance(node, dict):
            return None
    return node.get(path[-1])


def _set(body: dict, path: tuple[str, ...], value) -> None:
    node = body
    for name in path[:-1]:
        child = node.get(name)
        if not isinstance(child, dict):
            child = node[name] = {}
        node = child
    node[path[-1]] = value


def _held(requested, policy: ModelParameters) -> int | None:
    """The token limit to send: the request's, else the default, else the cap; never above
    the cap (refused or lowered)."""
    cap = policy.max_tokens_cap
    value = requested if requested is not None else policy.max_tokens
    if cap is None:
        return value
    if value is None:
        return cap
    if isinstance(value, bool) or not isinstance(value, int):
        return value  # not a number: Bedrock answers it as the model would
    if value > cap:
        if policy.on_cap == "clamp":
            return cap
        raise ProxyError(
            400,
            ABOVE_CAP,
            f"max_tokens {value} is above this account's cap of {cap}",
        )
    return value


def apply(call: Call, params: dict, foundation_model: str, policy: ModelParameters | None):
    """``params`` with the customer's parameters applied (a new dict; the input is kept)."""
    if policy is None or call.operation not in (INVOKE, CONVERSE):
        return params
    out = dict(params)
    if call.operation == CONVERSE:
        return _converse(out, policy)
    return _invoke(out, foundation_model, policy)


def _converse(params: dict, policy: ModelParameters) -> dict:
    config = dict(params.get("inferenceConfig") or {})
    tokens = _held(config.get("maxTokens"), policy)
    if tokens is not None:
        config["maxTokens"] = tokens
    if config.get("temperature") is None and policy.temperature is not None:
        config["temperature"] = float(policy.temperature)
    if config:
        params["inferenceConfig"] = config
    if policy.guardrail_id and not params.get("guardrailConfig"):
        params["guardrailConfig"] = {
            "guardrailIdentifier": policy.guardrail_id,
            "guardrailVersion": policy.guardrail_version,
        }
    return params


def _invoke(params: dict, foundation_model: str, policy: ModelParameters) -> dict:
    if policy.guardrail_id and not params.get("guardrailIdentifier"):
        params["guardrailIdentifier"] = policy.guardrail_id
        params["guardrailVersion"] = policy.guardrail_version
    body_wanted = (
        policy.max_tokens is not None
        or policy.max_tokens_cap is not None
        or policy.temperature is not None
    )
    if not body_wanted:
        return params
    paths = _family(foundation_model)
    body = _json_body(params)
    if paths is None or body is None:
        if policy.max_tokens_cap is not None:
            raise bad_request(
                "max_tokens_cap_unenforceable",
                "this account caps max_tokens, which this model's InvokeModel body cannot be "
                "held to; call it with Converse",
            )
        return params  # defaults only: a body the proxy cannot read passes unchanged
    token_path, temperature_path = paths
    if token_path[-1] == "max_new_tokens" and _get(body, _NOVA_ALTERNATIVE) is not None:
        token_path = _NOVA_ALTERNATIVE
    tokens = _held(_get(body, token_path), policy)
    changed = False
    if tokens is not None and tokens != _get(body, token_path):
        _set(body, token_path, tokens)
        changed = True
    if _get(body, temperature_path) is None and policy.temperature is not None:
        _set(body, temperature_path, float(policy.temperature))
        changed = True
    if changed:
        params["body"] = json.dumps(body, separators=(",", ":")).encode()
    return params


def _json_body(params: dict) -> dict | None:
    if "json" not in str(params.get("contentType") or "application/json").lower():
        return None
    try:
        body = json.loads(params.get("body") or b"")
    except (ValueError, RecursionError):
        return None
    return body if isinstance(body, dict) else None
