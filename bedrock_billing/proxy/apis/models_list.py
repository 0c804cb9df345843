"""``GET {prefix}/v1/models``: the models this customer may use, in one answer that both
OpenAI's model list and Anthropic's (``has_more``, ``first_id``, ``last_id``; Claude Code
keeps the ids that start with ``claude`` or ``anthropic``) read. Answered by the proxy
from its own tables: no Bedrock call, not metered."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from ...core.model_names import ModelNames, display_name
from .base import body_response, dumps

_DATE = re.compile(r"(20\d{2})(\d{2})(\d{2})")


def _created(model_id: str) -> int:
    found = _DATE.search(model_id)
    if found:
        try:
            when = datetime(*(int(g) for g in found.groups()), tzinfo=UTC)
            return int(when.timestamp())
        except ValueError:
            pass
    return 0


def _entry(model_id: str, owner: str) -> dict:
    created = _created(model_id)
    return {
        "id": model_id,
        "object": "model",
        "type": "model",
        "display_name": display_name(model_id),
        "created": created,
        "created_at": datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "owned_by": owner,
    }


def model_list(models: list[str], names: ModelNames, request_id: str, headers: dict) -> dict:
    data = []
    for foundation in sorted(set(models)):
        owner = foundation.split(".", 1)[0] if "." in foundation else "bedrock"
        data.extend(_entry(name, owner) for name in names.names_for(foundation))
        data.append(_entry(foundation, owner))
    body = {
        "object": "list",
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }
    out = {**headers, "Content-Type": "application/json", "request-id": request_id}
    return body_response(200, dumps(body).encode(), out)
