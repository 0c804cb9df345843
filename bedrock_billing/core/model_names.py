"""Model names a customer may send besides Bedrock's own ids: Anthropic's model ids
(``claude-3-haiku-20240307``) and aliases (``claude-sonnet-4-5``), mapped to the Bedrock id
the proxy calls. The pipeline resolves every request's model through this table before
the allowed-models check, the price lookup and the Bedrock call; the log line keeps the
name as sent (``model_id``) and the foundation model it resolved to.

The table is packaged with the proxy; the operator adds or overrides entries with
``BEDROCK_BILLING_MODEL_NAMES`` (a JSON object, name -> Bedrock model or profile id).
Models that Bedrock serves on demand only through a cross-region inference profile are
called through the system profile of the proxy's own geography (``us.``, ``eu.``, ...).
Names the table does not know are passed on unchanged (Bedrock ids, profile ids, ARNs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

# Anthropic id -> (Bedrock foundation id, needs an inference profile for on-demand calls).
# Sources: Anthropic's model overview ("Model names" table, API ids and Bedrock ids) and
# Bedrock's "Supported foundation models" / "Supported Regions and models for inference
# profiles" pages (docs/proxy.md cites them).
_ANTHROPIC: dict[str, tuple[str, bool]] = {
    "claude-3-haiku-20240307": ("anthropic.claude-3-haiku-20240307-v1:0", False),
    "claude-3-sonnet-20240229": ("anthropic.claude-3-sonnet-20240229-v1:0", False),
    "claude-3-opus-20240229": ("anthropic.claude-3-opus-20240229-v1:0", False),
    "claude-3-5-haiku-20241022": ("anthropic.claude-3-5-haiku-20241022-v1:0", False),
    "claude-3-5-sonnet-20240620": ("anthropic.claude-3-5-sonnet-20240620-v1:0", False),
    "claude-3-5-sonnet-20241022": ("anthropic.claude-3-5-sonnet-20241022-v2:0", False),
    "claude-3-7-sonnet-20250219": ("anthropic.claude-3-7-sonnet-20250219-v1:0", True),
    "claude-sonnet-4-20250514": ("anthropic.claude-sonnet-4-20250514-v1:0", True),
    "claude-opus-4-20250514": ("anthropic.claude-opus-4-20250514-v1:0", True),
    "claude-opus-4-1-20250805": ("anthropic.claude-opus-4-1-20250805-v1:0", True),
    "claude-sonnet-4-5-20250929": ("anthropic.claude-sonnet-4-5-20250929-v1:0", True),
    "claude-haiku-4-5-20251001": ("anthropic.claude-haiku-4-5-20251001-v1:0", True),
    "claude-opus-4-5-20251101": ("anthropic.claude-opus-4-5-20251101-v1:0", True),
}
# Anthropic's aliases, each to the dated id it points at.
_ALIASES = {
    "claude-3-haiku-latest": "claude-3-haiku-20240307",
    "claude-3-opus-latest": "claude-3-opus-20240229",
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
    "claude-3-5-sonnet-latest": "claude-3-5-sonnet-20241022",
    "claude-3-7-sonnet-latest": "claude-3-7-sonnet-20250219",
    "claude-sonnet-4-0": "claude-sonnet-4-20250514",
    "claude-opus-4-0": "claude-opus-4-20250514",
    "claude-opus-4-1": "claude-opus-4-1-20250805",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-opus-4-5": "claude-opus-4-5-20251101",
}

ENV_NAME = "BEDROCK_BILLING_MODEL_NAMES"


class ModelNamesError(ValueError):
    pass


def _geography(region: str | None) -> str:
    region = region or "us-east-1"
    if region.startswith("us-gov-"):
        return "us-gov"
    for prefix, geo in (("us-", "us"), ("eu-", "eu"), ("ca-", "ca"), ("ap-", "apac")):
        if region.startswith(prefix):
            return geo
    return "us"


@dataclass(frozen=True)
class ModelNames:
    region: str | None = None
    extra: dict[str, str] = field(default_factory=dict)  # the operator's: name -> Bedrock id

    @classmethod
    def from_env(cls, env, region: str | None) -> ModelNames:
        raw = env.get(ENV_NAME)
        if not raw:
            return cls(region)
        try:
            table = json.loads(raw)
        except ValueError:
            raise ModelNamesError(f"{ENV_NAME} must be a JSON object") from None
        if not isinstance(table, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and k and v for k, v in table.items()
        ):
            raise ModelNamesError(f"{ENV_NAME} must map model names to Bedrock model ids")
        return cls(region, dict(table))

    def resolve(self, name: object) -> object:
        """The Bedrock id to call for ``name`` (unchanged when the table does not know it)."""
        if not isinstance(name, str):
            return name
        if name in self.extra:
            return self.extra[name]
        entry = _ANTHROPIC.get(_ALIASES.get(name, name))
        if entry is None:
            return name
        foundation, needs_profile = entry
        return f"{_geography(self.region)}.{foundation}" if needs_profile else foundation

    def names_for(self, foundation_model: str) -> list[str]:
        """Anthropic's names for a foundation model (dated id first), for ``/v1/models``."""
        names = [n for n, (f, _) in _ANTHROPIC.items() if f == foundation_model]
        names += [n for n, f in self.extra.items() if f.split(".", 1)[-1] == foundation_model
                  or f == foundation_model]
        return names


def display_name(model_id: str) -> str:
    """``claude-3-5-haiku-20241022`` -> ``Claude 3.5 Haiku``; other ids as they are."""
    if not model_id.startswith("claude-"):
        return model_id
    parts = model_id.split("-")[1:]
    if parts and len(parts[-1]) == 8 and parts[-1].isdigit():
        parts = parts[:-1]
    numbers = [p for p in parts if p.isdigit()]
    words = [p.capitalize() for p in parts if not p.isdigit()]
    return " ".join(["Claude", ".".join(numbers), *words]).replace("  ", " ").strip()
