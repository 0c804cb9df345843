"""Faults the fake Bedrock can inject, and the error codes and statuses it answers with."""

from __future__ import annotations

import re

# kind -> (error code, HTTP status, message); codes and statuses from botocore's model.
ERRORS = {
    "validation": ("ValidationException", 400, "Malformed input request, please reformat."),
    "access_denied": (
        "AccessDeniedException",
        403,
        "You don't have access to the model with the specified model ID.",
    ),
    "not_found": ("ResourceNotFoundException", 404, "The requested resource was not found."),
    "throttling": ("ThrottlingException", 429, "Too many requests, please wait and try again."),
    "timeout": ("ModelTimeoutException", 408, "Model has timed out in processing the request."),
    "internal": ("InternalServerException", 500, "The server encountered an internal error."),
    "unavailable": ("ServiceUnavailableException", 503, "The service is unavailable."),
    "model_error": ("ModelErrorException", 424, "The model returned an error."),
    "model_not_ready": ("ModelNotReadyException", 429, "The model is not ready."),
    "quota": ("ServiceQuotaExceededException", 400, "Your request exceeds the service quota."),
}
# Faults that only a streaming call can show; other calls leave them queued.
STREAM_FAULTS = ("stream_truncated", "stream_exception")
FAULT_KINDS = tuple(ERRORS) + STREAM_FAULTS
MARKER = re.compile(r"\[\[fake:([a-z_]+)\]\]")
# Not a fault: a streamed answer to a prompt with this marker is paced, one word per event,
# at least SLOW_STREAM_EVENTS text events SLOW_STREAM_INTERVAL seconds apart, so a client
# can see a stream arrive incrementally through anything in between.
SLOW_STREAM = "[[fake:slow_stream]]"
SLOW_STREAM_EVENTS = 40
SLOW_STREAM_INTERVAL = 0.05


def _check(kind: str) -> str:
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
    return kind


def fault_marker(kind: str) -> str:
    """Text to put in a prompt so the fake answers with that fault, every time.

    It works through anything that forwards the prompt (a proxy, a sandbox in another
    process), where ``FakeBedrock.fail_next`` cannot be reached.
    """
    return f"[[fake:{_check(kind)}]]"


class Fault:
    def __init__(
        self, kind: str, message: str | None = None, exception_type: str | None = None
    ) -> None:
        self.kind = _check(kind)
        self.message = message
        # The member name in the stream's union, as Bedrock sends it in :exception-type.
        self.exception_type = exception_type or "modelStreamErrorException"

    @property
    def stream_only(self) -> bool:
        return self.kind in STREAM_FAULTS
