"""A customer's model parameters: defaults the proxy fills in when a request leaves them
out, and a ``max_tokens`` cap it may not exceed (refused or clamped, as configured).

Stored on the customer item as the map ``model_parameters`` (docs/schema.md):
``max_tokens`` (N, a default), ``max_tokens_cap`` (N), ``on_cap`` (S, ``refuse`` or
``clamp``), ``temperature`` (S, a decimal string 0 to 1: a default), ``guardrail_id`` and
``guardrail_version`` (S, a default guardrail). The proxy applies them
(``proxy/parameters.py``) to the one internal call every wire API becomes, so they hold
for Bedrock Runtime, Anthropic Messages, OpenAI chat and the first version's routes alike.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import InvalidInput

ON_CAP = ("refuse", "clamp")
MAX_TOKENS_BOUND = 1_000_000
CLEAR_WORDS = ("unset", "none", "default")
_GUARDRAIL_ID = re.compile(  # Bedrock's own pattern for a guardrail identifier
    r"^(([a-z0-9]+)|(arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:guardrail/[a-z0-9]+))$"
)
_GUARDRAIL_VERSION = re.compile(r"^(([1-9][0-9]{0,7})|(DRAFT))$")
FIELDS = ("max_tokens", "max_tokens_cap", "on_cap", "temperature", "guardrail_id",
          "guardrail_version")  # fmt: skip


@dataclass(frozen=True)
class ModelParameters:
    max_tokens: int | None = None
    max_tokens_cap: int | None = None
    on_cap: str = "refuse"
    temperature: Decimal | None = None
    guardrail_id: str | None = None
    guardrail_version: str | None = None

    def to_item(self) -> dict[str, Any] | None:
        """The stored map (None when nothing is set: the attribute is removed)."""
        out = {k: v for k, v in asdict(self).items() if v is not None}
        if self.temperature is not None:
            out["temperature"] = str(self.temperature)
        if self.max_tokens_cap is None:
            out.pop("on_cap", None)  # refuse or clamp: only with a cap
        return out or None


def _count(value: object, name: str) -> int:
    if isinstance(value, bool):
        raise InvalidInput(f"{name} must be a whole number")
    try:
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, got {str(value)[:40]!r}") from None
    if not 1 <= number <= MAX_TOKENS_BOUND:
        raise InvalidInput(f"{name} must be 1 to {MAX_TOKENS_BOUND}")
    return number


def _temperature(value: object) -> Decimal:
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidInput(
            f"temperature must be a number 0 to 1, got {str(value)[:40]!r}"
        ) from None
    if not number.is_finite() or not 0 <= number <= 1 or number.as_tuple().exponent < -4:
        raise InvalidInput("temperature must be a number 0 to 1 (at most 4 decimal places)")
    return number


def _check(params: ModelParameters) -> ModelParameters:
    if params.on_cap not in ON_CAP:
        raise InvalidInput(f"on_cap must be {' or '.join(ON_CAP)}")
    if (
        params.max_tokens is not None
        and params.max_tokens_cap is not None
        and params.max_tokens > params.max_tokens_cap
    ):
        raise InvalidInput(
            f"the default max_tokens ({params.max_tokens}) is above the cap "
            f"({params.max_tokens_cap})"
        )
    if (params.guardrail_id is None) != (params.guardrail_version is None):
        raise InvalidInput("a guardrail needs both its id and its version (ID:VERSION)")
    if params.guardrail_id is not None and not _GUARDRAIL_ID.match(params.guardrail_id):
        raise InvalidInput("the guardrail id is a Bedrock guardrail id or ARN")
    if params.guardrail_version is not None and not _GUARDRAIL_VERSION.match(
        params.guardrail_version
    ):
        raise InvalidInput("the guardrail version is a number or DRAFT")
    return params


def _cleared(value: object) -> bool:
    return isinstance(value, str) and value.strip().lower() in CLEAR_WORDS


def update(current: ModelParameters | None, **given: Any) -> ModelParameters:
    """``current`` with the operator's changes: a value not given (None) is kept; 'unset'
    clears it. ``guardrail`` is ``ID:VERSION``."""
    values = asdict(current or ModelParameters())
    unknown = set(given) - set(FIELDS) - {"guardrail"}
    if unknown:
        raise InvalidInput(f"unknown model parameter {sorted(unknown)[0]!r}")
    for name in ("max_tokens", "max_tokens_cap"):
        if given.get(name) is not None:
            values[name] = None if _cleared(given[name]) else _count(given[name], name)
    if given.get("on_cap") is not None:
        values["on_cap"] = str(given["on_cap"]).strip().lower()
    if given.get("temperature") is not None:
        raw = given["temperature"]
        values["temperature"] = None if _cleared(raw) else _temperature(raw)
    if given.get("guardrail") is not None:
        raw = str(given["guardrail"]).strip()
        if _cleared(raw):
            values["guardrail_id"] = values["guardrail_version"] = None
        else:
            ident, sep, version = raw.rpartition(":")
            if not sep or not ident:
                raise InvalidInput(
                    "give the guardrail as ID:VERSION (e.g. abc123:1 or abc123:DRAFT)"
                )
            values["guardrail_id"], values["guardrail_version"] = ident, version
    return _check(ModelParameters(**values))


def read_model_parameters(value: object) -> tuple[ModelParameters | None, str | None]:
    """A stored ``model_parameters`` map, strictly: (parameters, None) or (None, problem)."""
    if value is None:
        return None, None
    if not isinstance(value, dict):
        return None, "model_parameters is not a map (M)"
    unknown = set(value) - set(FIELDS)
    if unknown:
        return None, f"model_parameters has an unknown field {sorted(unknown)[0]!r}"
    try:
        for name in ("max_tokens", "max_tokens_cap"):
            if value.get(name) is not None and (
                isinstance(value[name], bool) or not isinstance(value[name], int)
            ):
                raise InvalidInput(f"{name} is not a whole number (N)")
        temperature = value.get("temperature")
        if temperature is not None and not isinstance(temperature, str):
            raise InvalidInput("temperature is not a decimal string (S)")
        params = ModelParameters(
            max_tokens=_count(value["max_tokens"], "max_tokens")
            if value.get("max_tokens") is not None
            else None,
            max_tokens_cap=_count(value["max_tokens_cap"], "max_tokens_cap")
            if value.get("max_tokens_cap") is not None
            else None,
            on_cap=value.get("on_cap", "refuse"),
            temperature=_temperature(temperature) if temperature is not None else None,
            guardrail_id=value.get("guardrail_id"),
            guardrail_version=value.get("guardrail_version"),
        )
        return _check(params), None
    except InvalidInput as exc:
        return None, f"model_parameters: {exc.message}"


def public(params: ModelParameters | None) -> dict[str, Any] | None:
    """The documented output shape (numbers as integers, the temperature as a string)."""
    if params is None:
        return None
    return params.to_item()
