"""Bedrock model ids: validation and normalisation to the foundation model.

Clients may name a model by its foundation id (``anthropic.claude-3-haiku-20240307-v1:0``),
by a cross-region inference profile (``us.anthropic...``, ``eu.``, ``apac.``, ``global.``
and the other geographic prefixes), or by an ARN of either. Limits (allowed models) and
prices are keyed by the foundation id, so every id is reduced to it; the id as sent is
kept too, since it is what Bedrock was called with and what the customer will recognise.

ARNs that cannot be resolved without an AWS call (application inference profiles,
provisioned, custom or imported models) are kept whole as their own "foundation" id: an
operator who wants to allow or price them lists the ARN itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidInput

# Geographic prefixes of system-defined cross-region inference profiles.
PROFILE_PREFIXES = ("us", "us-gov", "eu", "apac", "jp", "au", "ca", "global")

MAX_MODEL_ID_LENGTH = 2048  # InvokeModel's own bound on modelId
_VALID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/\-+]*$")
_ARN = re.compile(
    r"^arn:aws(?:-[a-z]+)*:bedrock:(?P<region>[a-z0-9-]*):(?P<account>\d{12})?:"
    r"(?P<kind>[a-z-]+)/(?P<rest>.+)$"
)
_PROFILE = re.compile(r"^(?P<geo>" + "|".join(re.escape(p) for p in PROFILE_PREFIXES) + r")\.")


@dataclass(frozen=True)
class ModelRef:
    """A model as the client named it, and the foundation model it runs."""

    model_id: str  # as sent: passed to Bedrock unchanged
    foundation_model: str  # for allowed-model checks, prices and the DAY# usage key
    profile: str | None = None  # the inference profile id, when one was used


def _strip_profile(model: str) -> tuple[str, str | None]:
    match = _PROFILE.match(model)
    if match and "." in model[match.end() :]:
        # "us.anthropic.claude..." -> "anthropic.claude..."; a bare "us.x" with no provider
        # part is left alone, as it is not a profile id.
        return model[match.end() :], model
    return model, None


def normalise_model_id(model_id: object) -> ModelRef:
    """Validate a client's ``modelId`` and resolve its foundation model.

    Raises :class:`InvalidInput` for anything that is not a plausible model id, so the
    proxy answers 400 before any AWS call.
    """
    if not isinstance(model_id, str) or not model_id:
        raise InvalidInput("modelId must be a non-empty string")
    if len(model_id) > MAX_MODEL_ID_LENGTH or not _VALID.match(model_id):
        raise InvalidInput("modelId is not a valid Bedrock model id")
    arn = _ARN.match(model_id)
    if arn:
        kind, rest = arn.group("kind"), arn.group("rest")
        if kind == "foundation-model":
            return ModelRef(model_id, rest)
        if kind == "inference-profile":
            foundation, profile = _strip_profile(rest)
            return ModelRef(model_id, foundation, profile or rest)
        # application-inference-profile, provisioned-model, custom-model, imported-model...
        return ModelRef(model_id, model_id)
    if model_id.startswith("arn:"):
        raise InvalidInput("modelId is not a valid Bedrock model ARN")
    foundation, profile = _strip_profile(model_id)
    return ModelRef(model_id, foundation, profile)
