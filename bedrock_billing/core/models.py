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

# The grammar of Bedrock's model ids (InvokeModel's documented modelId pattern, less its
# catch-all alternative for bare names): ``provider.model[-...][:version[:variant]]``,
# optionally behind a geography prefix (a system inference profile), or an ARN of a
# foundation model, an inference profile or a provisioned, custom or imported model. Lower
# case, digits and hyphens only in the id's parts, so a token (``bbk_...``, or any secret
# with an underscore or a capital) can never pass for one and reach a table or a log line.
_PART = r"[a-z0-9](?:[a-z0-9-]{0,62})"
_FOUNDATION = rf"{_PART}\.{_PART}(?:[.:]{_PART}){{0,3}}"
_FOUNDATION_ID = re.compile(_FOUNDATION)
_ARN = re.compile(
    r"arn:aws(?:-[a-z]+)*:bedrock:(?P<region>[a-z0-9-]{1,20}):(?P<account>\d{12})?:"
    r"(?P<kind>foundation-model|inference-profile|application-inference-profile|"
    r"provisioned-model|custom-model|imported-model)/(?P<rest>[a-z0-9][a-z0-9.:/-]{0,255})"
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
    if len(model_id) > MAX_MODEL_ID_LENGTH:
        raise InvalidInput("modelId is not a valid Bedrock model id")
    if model_id.startswith("arn:"):
        arn = _ARN.fullmatch(model_id)
        if arn is None:
            raise InvalidInput("modelId is not a valid Bedrock model ARN")
        kind, rest = arn.group("kind"), arn.group("rest")
        if kind == "foundation-model":
            if not _FOUNDATION_ID.fullmatch(rest):
                raise InvalidInput("modelId is not a valid Bedrock model ARN")
            return ModelRef(model_id, rest)
        if kind == "inference-profile":
            foundation, profile = _strip_profile(rest)
            if not _FOUNDATION_ID.fullmatch(foundation):
                raise InvalidInput("modelId is not a valid Bedrock model ARN")
            return ModelRef(model_id, foundation, profile or rest)
        # application-inference-profile, provisioned-model, custom-model, imported-model...
        return ModelRef(model_id, model_id)
    foundation, profile = _strip_profile(model_id)
    if not _FOUNDATION_ID.fullmatch(foundation):
        raise InvalidInput("modelId is not a valid Bedrock model id")
    return ModelRef(model_id, foundation, profile)


def inference_scope(model_id: str | None) -> str:
    """How AWS bills the call's routing: ``global`` for a global inference profile, ``geo``
    for a geographic (cross-Region) one, ``in_region`` for anything else."""
    if not model_id:
        return "in_region"
    try:
        profile = normalise_model_id(model_id).profile
    except InvalidInput:  # an id the proxy refused: it served nothing
        return "in_region"
    if not profile:
        return "in_region"
    return "global" if profile.startswith("global.") else "geo"


APPLICATION_PROFILE_ARN = re.compile(
    r"arn:aws(?:-[a-z]+)*:bedrock:[a-z0-9-]{1,20}:\d{12}:application-inference-profile/"
    r"[a-z0-9]{1,64}"
)


def is_application_profile_arn(value: object) -> bool:
    return isinstance(value, str) and APPLICATION_PROFILE_ARN.fullmatch(value) is not None


def route_through_profile(
    profiles: tuple[tuple[str, str], ...], model: ModelRef
) -> tuple[ModelRef, str]:
    """The model to meter and the id to call Bedrock with, given a customer's application
    inference profiles (source model id -> profile ARN). The customer's own profile ARN is
    resolved to the model it copies (for limits, prices and reports); a call to a source
    model goes through the customer's profile, so AWS's bill carries the customer's tag."""
    for source, arn in profiles:
        if model.model_id == arn:
            copied = normalise_model_id(source)
            return ModelRef(arn, copied.foundation_model, copied.profile), arn
        if model.model_id == source:
            return model, arn
    return model, model.model_id
