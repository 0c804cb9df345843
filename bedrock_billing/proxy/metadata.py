"""The proxy's tag on every Bedrock call: the customer, the proxy's request id and the
installation (its usage table's name) as Bedrock request metadata, recorded by Bedrock in
its model invocation logs.

``reconcile --against invocation-logs`` matches those logs with the proxy's own lines; the
tag is what names the customer of a call the proxy served but never recorded. Bedrock takes
it as the ``X-Amzn-Bedrock-Request-Metadata`` header (a JSON object of strings) on
InvokeModel and InvokeModelWithResponseStream, and as the ``requestMetadata`` map in a
Converse or ConverseStream body (botocore's model: at most 16 entries, keys of 1 to 256
and values of up to 256 characters from ``[a-zA-Z0-9\\s:_@$#=/+,-.]``; the header at most
8,500 characters). CountTokens takes none (it is free and not logged). docs/reconcile.md.

The proxy's keys overwrite a client's keys of the same names, so a client cannot book its
usage to another customer; the client's other keys pass through.
"""

from __future__ import annotations

import json
import re

# The keys the proxy owns (Hive-safe names: the Athena table reads them as struct fields).
from ..core.invocationlog import CUSTOMER_KEY, INSTALLATION_KEY, REQUEST_KEY

__all__ = ["MetadataError", "merge", "merge_header", "proxy_tags", "safe_value"]

MAX_ENTRIES = 16  # botocore: RequestMetadata map, max 16
MAX_VALUE = 256
MAX_HEADER = 8500  # botocore: InvokeModel requestMetadata header, max 8500 characters
_UNSAFE = re.compile(r"[^a-zA-Z0-9\s:_@$#=/+,\-.]")


class MetadataError(ValueError):
    """The client's own request metadata cannot be carried (not a JSON object of strings,
    or no room left for the proxy's keys)."""


def safe_value(value: object) -> str:
    """A value Bedrock accepts: characters outside its pattern dropped, bounded."""
    return _UNSAFE.sub("", str(value or ""))[:MAX_VALUE]


def proxy_tags(customer_id: str, request_id: str, usage_table: str) -> dict[str, str]:
    return {
        CUSTOMER_KEY: safe_value(customer_id),
        REQUEST_KEY: safe_value(request_id),
        INSTALLATION_KEY: safe_value(usage_table),
    }


def merge(client: dict | None, tags: dict[str, str]) -> dict[str, str]:
    """The client's metadata with the proxy's keys set over it."""
    merged = {k: v for k, v in (client or {}).items() if k not in tags}
    if len(merged) + len(tags) > MAX_ENTRIES:
        room = MAX_ENTRIES - len(tags)
        raise MetadataError(f"request metadata: at most {room} keys of the client's own")
    merged.update(tags)
    return merged


def merge_header(value: str | None, tags: dict[str, str]) -> str:
    """The ``X-Amzn-Bedrock-Request-Metadata`` value: the client's JSON object (if any) with
    the proxy's keys set over it."""
    client: dict = {}
    if value is not None and value.strip():
        try:
            client = json.loads(value)
        except ValueError:
            raise MetadataError("request metadata: the header is not JSON") from None
        if not isinstance(client, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in client.items()
        ):
            raise MetadataError("request metadata: the header must be a JSON object of strings")
    text = json.dumps(merge(client, tags), separators=(",", ":"))
    if len(text) > MAX_HEADER:
        raise MetadataError(f"request metadata: the header is over {MAX_HEADER} characters")
    return text
