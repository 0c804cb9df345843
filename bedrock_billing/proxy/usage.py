"""Token usage as Bedrock reports it, from each of the places it reports it.

Order of trust, per call type:

- InvokeModel: the ``X-Amzn-Bedrock-*-Token-Count`` response headers (Bedrock's own
  meter, the same for every model), else the body's ``usage`` (Anthropic, Nova, ...),
  else an estimate flagged ``estimated``.
- InvokeModelWithResponseStream: the last chunk's ``amazon-bedrock-invocationMetrics``,
  else what the stream carried (Anthropic's ``message_start`` / ``message_delta``),
  else an estimate flagged ``estimated``.
- Converse and ConverseStream: ``usage`` (response) or the ``metadata`` event (stream).

An estimate is about four characters per token of the request and answer JSON: it only
exists so that a request whose usage never arrived is counted and flagged, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

CHARS_PER_TOKEN = 4

HEADER_INPUT = "x-amzn-bedrock-input-token-count"
HEADER_OUTPUT = "x-amzn-bedrock-output-token-count"
HEADER_CACHE_READ = "x-amzn-bedrock-cache-read-input-token-count"
HEADER_CACHE_WRITE = "x-amzn-bedrock-cache-write-input-token-count"
HEADER_LATENCY = "x-amzn-bedrock-invocation-latency"
HEADER_SERVICE_TIER = "x-amzn-bedrock-service-tier"
METRICS_KEY = "amazon-bedrock-invocationMetrics"


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_write_input_tokens: int = 0
    estimated: bool = False
    latency_ms: int | None = None

    @property
    def token_count(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_input_tokens
            + self.cache_write_input_tokens
        )


def _count(value) -> int | None:
    """A non-negative integer token count, or None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return None


def _first(mapping: dict, *names: str) -> int | None:
    for name in names:
        value = _count(mapping.get(name))
        if value is not None:
            return value
    return None


def estimate(request_chars: int, answer_chars: int) -> Usage:
    return Usage(
        input_tokens=max(1, request_chars // CHARS_PER_TOKEN),
        output_tokens=answer_chars // CHARS_PER_TOKEN,
        estimated=True,
    )


def from_headers(headers: dict) -> Usage | None:
    inp, out = _count(headers.get(HEADER_INPUT)), _count(headers.get(HEADER_OUTPUT))
    if inp is None or out is None:
        return None
    return Usage(
        input_tokens=inp,
        output_tokens=out,
        cache_read_input_tokens=_count(headers.get(HEADER_CACHE_READ)) or 0,
        cache_write_input_tokens=_count(headers.get(HEADER_CACHE_WRITE)) or 0,
        latency_ms=_count(headers.get(HEADER_LATENCY)),
    )


def from_body_usage(usage: object) -> Usage | None:
    """A body's ``usage`` object in the shapes Bedrock's models use (Anthropic, Nova, Converse)."""
    if not isinstance(usage, dict):
        return None
    inp = _first(usage, "input_tokens", "inputTokens", "prompt_tokens")
    out = _first(usage, "output_tokens", "outputTokens", "completion_tokens")
    if inp is None or out is None:
        return None
    return Usage(
        input_tokens=inp,
        output_tokens=out,
        cache_read_input_tokens=_first(
            usage, "cache_read_input_tokens", "cacheReadInputTokens", "cacheReadInputTokenCount"
        )
        or 0,
        cache_write_input_tokens=_first(
            usage,
            "cache_creation_input_tokens",
            "cache_write_input_tokens",
            "cacheWriteInputTokens",
            "cacheWriteInputTokenCount",
        )
        or 0,
    )


def from_body(body: object) -> Usage | None:
    if not isinstance(body, dict):
        return None
    found = from_body_usage(body.get("usage"))
    if found:
        return found
    # Meta Llama's body reports counts at top level.
    inp, out = _first(body, "prompt_token_count"), _first(body, "generation_token_count")
    if inp is not None and out is not None:
        return Usage(input_tokens=inp, output_tokens=out)
    return None


def from_metrics(metrics: object) -> Usage | None:
    if not isinstance(metrics, dict):
        return None
    inp, out = _first(metrics, "inputTokenCount"), _first(metrics, "outputTokenCount")
    if inp is None or out is None:
        return None
    return Usage(
        input_tokens=inp,
        output_tokens=out,
        cache_read_input_tokens=_first(metrics, "cacheReadInputTokenCount") or 0,
        cache_write_input_tokens=_first(metrics, "cacheWriteInputTokenCount") or 0,
        latency_ms=_first(metrics, "invocationLatency"),
    )


class StreamUsage:
    """Follows a stream's chunks and keeps the best usage seen so far."""

    def __init__(self):
        self.metrics: Usage | None = None
        self.partial: Usage | None = None  # from Anthropic's message_start / message_delta
        self.answer_chars = 0

    def observe(self, chunk: dict, raw_len: int) -> None:
        self.answer_chars += raw_len
        found = from_metrics(chunk.get(METRICS_KEY))
        if found:
            self.metrics = found
            return
        kind = chunk.get("type")
        if kind == "message_start":
            message = chunk.get("message")
            started = from_body_usage_lenient(
                message.get("usage") if isinstance(message, dict) else None
            )
            if started:
                self.partial = started
        elif kind == "message_delta" and isinstance(chunk.get("usage"), dict):
            out = _first(chunk["usage"], "output_tokens")
            if out is not None:
                self.partial = self.partial or Usage()
                self.partial.output_tokens = out  # cumulative in Anthropic's stream

    def result(self, request_chars: int) -> Usage:
        if self.metrics:
            return self.metrics
        if self.partial:
            # What the model's own events said; flagged, since Bedrock's final count is missing.
            self.partial.estimated = True
            return self.partial
        return estimate(request_chars, self.answer_chars)


def from_body_usage_lenient(usage: object) -> Usage | None:
    """Anthropic's message_start usage: input known, output still to come (may be absent)."""
    if not isinstance(usage, dict) or _first(usage, "input_tokens") is None:
        return None
    return Usage(
        input_tokens=_first(usage, "input_tokens") or 0,
        output_tokens=_first(usage, "output_tokens") or 0,
        cache_read_input_tokens=_first(usage, "cache_read_input_tokens") or 0,
        cache_write_input_tokens=_first(usage, "cache_creation_input_tokens") or 0,
    )
