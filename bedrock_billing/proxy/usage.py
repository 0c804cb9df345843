"""Token usage as Bedrock reports it, from each of the places it reports it.

Order of trust, per call type:

- InvokeModel: the ``X-Amzn-Bedrock-*-Token-Count`` response headers (Bedrock's own
  meter, the same for every model), else the body's ``usage`` (Anthropic, Nova, ...),
  else an estimate flagged ``estimated``.
- InvokeModelWithResponseStream: the last chunk's ``amazon-bedrock-invocationMetrics``,
  else what the stream carried (the counts the model reported on the way, else the
  generated text actually delivered), flagged ``estimated``.
- Converse and ConverseStream: ``usage`` (response) or the ``metadata`` event (stream); a
  ConverseStream cut before its ``metadata`` is counted from what it carried, flagged.

An estimate is about four characters per token: of the generated text only (never the
JSON around it) for an answer, of the request for an input the stream never reported. It
only exists so that a request whose usage never arrived is counted and flagged, never
dropped.
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
    # Of the cache writes, those with a 1-hour lifetime (the rest have the default 5
    # minutes): AWS prices the two apart. Not added to token_count (already in writes).
    cache_write_1h_input_tokens: int = 0

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
    """``answer_chars``: the characters of generated text (``generated_chars``)."""
    return Usage(
        input_tokens=max(1, request_chars // CHARS_PER_TOKEN),
        output_tokens=tokens_of_text(answer_chars),
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


def cache_write_1h(usage: object) -> int:
    """The 1-hour share of a usage object's cache writes: Converse's ``cacheDetails``
    (``[{"ttl": "1h"|"5m", "inputTokens": n}]``, botocore's TokenUsage shape) or Anthropic's
    ``cache_creation.ephemeral_1h_input_tokens``; 0 when neither is there."""
    if not isinstance(usage, dict):
        return 0
    details = usage.get("cacheDetails")
    if isinstance(details, list):
        return sum(
            _count(d.get("inputTokens")) or 0
            for d in details
            if isinstance(d, dict) and d.get("ttl") == "1h"
        )
    creation = usage.get("cache_creation")
    if isinstance(creation, dict):
        return _first(creation, "ephemeral_1h_input_tokens") or 0
    return 0


def with_1h_split(usage: Usage, source: object) -> Usage:
    """``usage`` with the 1-hour share read from ``source`` (never above the writes)."""
    usage.cache_write_1h_input_tokens = min(
        cache_write_1h(source), usage.cache_write_input_tokens
    )
    return usage


def from_body_usage(usage: object) -> Usage | None:
    """A body's ``usage`` object in the shapes Bedrock's models use (Anthropic, Nova, Converse)."""
    if not isinstance(usage, dict):
        return None
    inp = _first(usage, "input_tokens", "inputTokens", "prompt_tokens")
    out = _first(usage, "output_tokens", "outputTokens", "completion_tokens")
    if inp is None or out is None:
        return None
    found = Usage(
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
    return with_1h_split(found, usage)


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


# Keys under which the models' stream chunks carry generated text, in every family the
# proxy meets: Anthropic's ``delta.text`` / ``thinking`` / ``partial_json`` (tool input),
# Titan's ``outputText``, Llama's ``generation``, Mistral's ``outputs[].text`` (and its
# chat models' ``choices[].message.content`` / ``delta.content``), Nova's and
# ConverseStream's ``contentBlockDelta.delta.text`` / ``reasoningContent.text`` /
# ``toolUse.input``, Claude v2's ``completion``. Only string values count: ids, roles,
# stop reasons, signatures and the JSON around them are not what the model generated.
TEXT_KEYS = frozenset(
    {"text", "outputText", "generation", "completion", "content", "thinking", "partial_json",
     "input"}
)


def generated_chars(chunk: object) -> int:
    """Characters of generated text in one stream chunk or event (iterative: a deeply
    nested chunk cannot exhaust the stack)."""
    total = 0
    stack: list[tuple[object, str | None]] = [(chunk, None)]
    while stack:
        value, key = stack.pop()
        if isinstance(value, str):
            if key in TEXT_KEYS:
                total += len(value)
        elif isinstance(value, dict):
            stack.extend((v, k) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, key) for v in value)
    return total


def tokens_of_text(chars: int) -> int:
    """An estimate of the tokens of ``chars`` characters of generated text."""
    return -(-chars // CHARS_PER_TOKEN)


class StreamUsage:
    """Follows a stream's chunks (InvokeModelWithResponseStream) or events (ConverseStream,
    as ``{event type: members}``) and keeps what they carried.

    Bedrock's own final count wins: ``amazon-bedrock-invocationMetrics`` or, for
    ConverseStream, the ``metadata`` event. Without it the stream is counted from what it
    carried, flagged ``estimated``: the input tokens the model reported on the way
    (Anthropic's ``message_start``, Titan's ``inputTextTokenCount``, Llama's
    ``prompt_token_count``), else an estimate from the request's size; the output the model
    counted so far (Anthropic's ``message_delta``, Titan's ``totalOutputTextTokenCount``,
    Llama's ``generation_token_count``, a ``metadata`` usage), else the generated text
    actually delivered at four characters a token.
    """

    def __init__(self, converse: bool = False):
        self.converse = converse
        self.metrics: Usage | None = None
        self.reported: Usage | None = None  # a whole usage object seen in the stream
        self.input: Usage | None = None  # input (and cache) tokens reported on the way
        self.output_tokens: int | None = None  # the model's running output count
        self.text_chars = 0
        self.opaque_chars = 0  # chunks that were not JSON: their size is all we know

    def observe(self, chunk: dict, raw_len: int = 0) -> None:
        found = from_metrics(chunk.get(METRICS_KEY))
        if found:
            self.metrics = found
            return
        if set(chunk) == {"bytes"}:  # not JSON (bedrock.invoke_stream wraps it so)
            self.opaque_chars += raw_len
            return
        self.text_chars += generated_chars(chunk)
        metadata = chunk.get("metadata")
        if isinstance(metadata, dict):
            self.reported = from_body_usage(metadata.get("usage")) or self.reported
        kind = chunk.get("type")
        if kind == "message_start":
            message = chunk.get("message")
            started = from_body_usage_lenient(
                message.get("usage") if isinstance(message, dict) else None
            )
            if started:
                self.input = started
        elif kind == "message_delta" and isinstance(chunk.get("usage"), dict):
            out = _first(chunk["usage"], "output_tokens")
            if out is not None:
                self.output_tokens = out  # cumulative in Anthropic's stream
        # Titan and Llama count as they go: running totals in every chunk.
        inp = _first(chunk, "inputTextTokenCount", "prompt_token_count")
        if inp is not None and self.input is None:
            self.input = Usage(input_tokens=inp)
        out = _first(chunk, "totalOutputTextTokenCount", "generation_token_count")
        if out is not None:
            self.output_tokens = max(out, self.output_tokens or 0)

    def result(self, request_chars: int) -> Usage:
        if self.metrics:
            # The invocation metrics carry no lifetime split: the model's message_start does.
            if self.input and self.input.cache_write_1h_input_tokens:
                self.metrics.cache_write_1h_input_tokens = min(
                    self.input.cache_write_1h_input_tokens,
                    self.metrics.cache_write_input_tokens,
                )
            return self.metrics
        if self.reported:
            # ConverseStream's metadata is Bedrock's own final count; in an InvokeModel
            # stream it is the model's, and Bedrock's metrics are missing: flagged.
            self.reported.estimated = not self.converse
            return self.reported
        usage = Usage(**{**self.input.__dict__}) if self.input else Usage(
            input_tokens=max(1, request_chars // CHARS_PER_TOKEN)
        )
        if self.output_tokens is not None:
            usage.output_tokens = self.output_tokens
        else:
            usage.output_tokens = tokens_of_text(self.text_chars) + (
                self.opaque_chars // CHARS_PER_TOKEN
            )
        usage.estimated = True
        return usage


def from_body_usage_lenient(usage: object) -> Usage | None:
    """Anthropic's message_start usage: input known, output still to come (may be absent)."""
    if not isinstance(usage, dict) or _first(usage, "input_tokens") is None:
        return None
    found = Usage(
        input_tokens=_first(usage, "input_tokens") or 0,
        output_tokens=_first(usage, "output_tokens") or 0,
        cache_read_input_tokens=_first(usage, "cache_read_input_tokens") or 0,
        cache_write_input_tokens=_first(usage, "cache_creation_input_tokens") or 0,
    )
    return with_1h_split(found, usage)
