"""Per-customer application inference profiles: AWS's bill then splits Bedrock cost by the
customer's tag (once ``bedrock-billing:customer-id`` is activated as a cost-allocation tag).

``add_inference_profile`` creates the profile with Bedrock's control-plane
``CreateInferenceProfile`` (``modelSource.copyFrom``: the foundation model's ARN, or a
system-defined cross-Region profile's), tagged with the customer id and the stage, and
records it on the customer (``inference_profiles``: source model id -> profile ARN); the
proxy then calls Bedrock through it for that customer (core/models.route_through_profile).
AWS's quota: "Application inference profiles per account", per Region, adjustable in
Service Quotas; at the quota ``CreateInferenceProfile`` fails with
``ServiceQuotaExceededException`` and the customer is left unchanged.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..core.errors import AwsError, Conflict, InvalidInput
from ..core.models import normalise_model_id
from ..core.timeutil import Clock, iso_z, system_clock
from .customers import public_customer, require_customer, resolve_customer_id

CUSTOMER_TAG = "bedrock-billing:customer-id"
STAGE_TAG = "bedrock-billing:stage"


def control_plane(settings):
    """Bedrock's control-plane client (a function, so tests can put a fake in its place:
    moto has no inference-profile API)."""
    return settings.client("bedrock")


def _source_arn(model_id: str, region: str, account: str) -> str:
    ref = normalise_model_id(model_id)
    if model_id.startswith("arn:") or ref.foundation_model.startswith("arn:"):
        raise InvalidInput(f"--inference-profile takes a model id, not an ARN: {model_id}")
    if ref.profile:
        return f"arn:aws:bedrock:{region}:{account}:inference-profile/{ref.profile}"
    return f"arn:aws:bedrock:{region}::foundation-model/{ref.foundation_model}"


def add_inference_profile(
    settings,
    customer_id: str,
    model_id: str,
    *,
    bedrock=None,
    account: str | None = None,
    clock: Clock = system_clock,
) -> dict[str, Any]:
    """Create the customer's application inference profile for ``model_id`` (a foundation
    model id or a cross-Region profile id) and record it; one per customer and model."""
    cid = resolve_customer_id(settings, customer_id)
    customer = require_customer(settings, cid)
    profiles = dict(customer.get("inference_profiles") or {})
    normalise_model_id(model_id)
    if model_id in profiles:
        raise Conflict(f"the customer already has an inference profile for {model_id}")
    bedrock = bedrock or control_plane(settings)
    region = settings.session().region_name
    if account is None:
        account = settings.client("sts").get_caller_identity()["Account"]
    source = _source_arn(model_id, region, account)
    digest = hashlib.sha256(f"{cid}|{model_id}".encode()).hexdigest()[:12]
    name = f"bb-{settings.stage}-{cid[:8]}-{digest}"
    try:
        made = bedrock.create_inference_profile(
            inferenceProfileName=name,
            description=f"bedrock-billing customer {cid}",
            clientRequestToken=f"bb-{digest}",
            modelSource={"copyFrom": source},
            tags=[{"key": CUSTOMER_TAG, "value": cid}, {"key": STAGE_TAG, "value": settings.stage}],
        )
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code == "ServiceQuotaExceededException":
            raise AwsError(
                "Bedrock refused: the account is at its quota of application inference "
                "profiles in this Region (Service Quotas: 'Application inference profiles "
                "per account'); the customer is unchanged"
            ) from None
        raise
    arn = made["inferenceProfileArn"]
    profiles[model_id] = arn
    from ..stores.customers import CustomerStore

    store = CustomerStore(settings.client("dynamodb"), settings.tables)
    updated = store.update(cid, {"inference_profiles": profiles, "updated_at": iso_z(clock())},
                           expected_updated_at=customer.get("updated_at"))  # fmt: skip
    return {**public_customer(updated), "inference_profile_arn": arn, "model": model_id}
