"""The one internal call every wire API is turned into, and the stream events every wire
API renders: the seam between the adapters (``proxy/apis/``) and the pipeline.

An adapter parses its API's request into a :class:`Call`; the pipeline authenticates,
admits, calls Bedrock, meters and logs it without knowing which API it came from; the
adapter renders the :class:`~.bedrock.Result`, each :class:`StreamEvent` or the refusal
in its own format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# Operations the pipeline knows (also the log line's ``api`` field).
INVOKE = "invoke"
CONVERSE = "converse"
COUNT_TOKENS = "count_tokens"


@dataclass
class Call:
    operation: str  # INVOKE | CONVERSE | COUNT_TOKENS
    model_id: object  # as the client sent it; the pipeline validates and normalises it
    stream: bool = False
    body: dict | None = None  # Converse / CountTokens members, or a JSON InvokeModel payload
    raw_body: bytes | None = None  # InvokeModel's body exactly as sent (passed unchanged)
    headers: dict[str, str] = field(default_factory=dict)  # the client's, lower-cased
    wire_api: str = ""  # which API the client spoke (the log line records it)
    # The adapter's own per-request settings and stream state (the pipeline ignores it).
    options: dict = field(default_factory=dict)


@dataclass
class StreamEvent:
    """One event of a Bedrock stream, neutral to the wire format it is rendered in."""

    kind: str  # "chunk" (InvokeModel streams) or the ConverseStream event's name
    payload: dict  # the chunk's JSON object, or the Converse event's members
    raw: bytes | None = None  # InvokeModel streams: the chunk's bytes as Bedrock sent them


EventSink = Callable[[StreamEvent], None]
