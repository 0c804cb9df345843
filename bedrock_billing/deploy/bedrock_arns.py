"""Which Bedrock ARNs the proxy's role must be allowed to invoke for a list of model ids.

A plain foundation model id (``anthropic.claude-3-haiku-20240307-v1:0``) is invoked in
the stack's region. A system inference profile id (``us.anthropic...``) is invoked through
the profile's ARN, and Bedrock then routes the request to the foundation model in one of
the profile's destination regions: the role needs the foundation model's ARN in each of
them. Those statements carry a ``bedrock:InferenceProfileArn`` condition, so the
foundation model can be reached in another region only through the profile.

The destination regions below are those AWS listed for each geography when this was
written; AWS adds regions over time, so ``routing_regions`` overrides a geography.
"""

from __future__ import annotations

from collections.abc import Mapping

# Geography prefix of a system inference profile -> destination regions.
PROFILE_REGIONS: dict[str, tuple[str, ...]] = {
    "us": ("us-east-1", "us-east-2", "us-west-1", "us-west-2"),
    "us-gov": ("us-gov-east-1", "us-gov-west-1"),
    "ca": ("ca-central-1", "ca-west-1"),
    "eu": (
        "eu-central-1",
        "eu-central-2",
        "eu-north-1",
        "eu-south-1",
        "eu-south-2",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
    ),
    "apac": (
        "ap-northeast-1",
        "ap-northeast-2",
        "ap-northeast-3",
        "ap-south-1",
        "ap-south-2",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-southeast-3",
        "ap-southeast-4",
    ),
    "jp": ("ap-northeast-1", "ap-northeast-3"),
    "au": ("ap-southeast-2", "ap-southeast-4"),
}
# Global profiles route to any commercial region: the one place a region wildcard is
# needed (AWS publishes no fixed list), still bound to the profile by the condition.
GLOBAL_PREFIX = "global"

INVOKE_ACTIONS = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]


def split_profile(model_id: str) -> tuple[str | None, str]:
    """``("us", "anthropic.claude...")`` for a profile id, ``(None, model_id)`` otherwise."""
    head, dot, rest = model_id.partition(".")
    if dot and (head in PROFILE_REGIONS or head == GLOBAL_PREFIX):
        return head, rest
    return None, model_id


def _sub(arn: str) -> dict:
    return {"Fn::Sub": arn}


def invoke_statements(
    models: tuple[str, ...], routing_regions: Mapping[str, tuple[str, ...]] | None = None
) -> list[dict]:
    """IAM statements allowing InvokeModel (and its streaming form) on exactly ``models``."""
    regions = {**PROFILE_REGIONS, **(routing_regions or {})}
    direct: list[dict] = []
    statements: list[dict] = []
    for model_id in sorted(set(models)):
        geo, foundation = split_profile(model_id)
        if geo is None:
            direct.append(
                _sub(
                    f"arn:${{AWS::Partition}}:bedrock:${{AWS::Region}}::foundation-model/{model_id}"
                )
            )
            continue
        profile_arn = (
            f"arn:${{AWS::Partition}}:bedrock:${{AWS::Region}}:${{AWS::AccountId}}"
            f":inference-profile/{model_id}"
        )
        if geo == GLOBAL_PREFIX:
            targets = [
                _sub(f"arn:${{AWS::Partition}}:bedrock:*::foundation-model/{foundation}"),
                # Global routing also authorises against the region-less model ARN.
                _sub(f"arn:${{AWS::Partition}}:bedrock:::foundation-model/{foundation}"),
            ]
        else:
            targets = [
                _sub(f"arn:${{AWS::Partition}}:bedrock:{region}::foundation-model/{foundation}")
                for region in regions[geo]
            ]
        statements.append(
            {"Effect": "Allow", "Action": INVOKE_ACTIONS, "Resource": [_sub(profile_arn)]}
        )
        statements.append(
            {
                "Effect": "Allow",
                "Action": INVOKE_ACTIONS,
                "Resource": targets,
                "Condition": {"StringEquals": {"bedrock:InferenceProfileArn": _sub(profile_arn)}},
            }
        )
    if direct:
        statements.insert(0, {"Effect": "Allow", "Action": INVOKE_ACTIONS, "Resource": direct})
    return statements


PROFILE_STAGE_TAG = "bedrock-billing:stage"  # services/inference_profiles.py tags with it


def application_profile_statements(
    models: tuple[str, ...], stage: str, routing_regions: Mapping[str, tuple[str, ...]] | None
) -> list[dict]:
    """The per-customer application inference profiles (``create --inference-profile``):
    InvokeModel on the profiles this stage made (by their stage tag), and on the deployed
    models' foundation models wherever such a profile routes them, only through one."""
    regions = {**PROFILE_REGIONS, **(routing_regions or {})}
    profiles = (
        "arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}"
        ":application-inference-profile/*"
    )
    targets = []
    for model_id in sorted(set(models)):
        geo, foundation = split_profile(model_id)
        where = ("${AWS::Region}",) if geo is None else ("*",) if geo == GLOBAL_PREFIX else (
            regions[geo])
        targets += [_sub(f"arn:${{AWS::Partition}}:bedrock:{r}::foundation-model/{foundation}")
                    for r in where]  # fmt: skip
    statements = [{
        "Effect": "Allow",
        "Action": INVOKE_ACTIONS,
        "Resource": [_sub(profiles)],
        "Condition": {"StringEquals": {f"aws:ResourceTag/{PROFILE_STAGE_TAG}": stage}},
    }]  # fmt: skip
    if targets:
        statements.append({
            "Effect": "Allow",
            "Action": INVOKE_ACTIONS,
            "Resource": sorted(targets, key=str),
            "Condition": {"ArnLike": {"bedrock:InferenceProfileArn": _sub(profiles)}},
        })  # fmt: skip
    return statements
