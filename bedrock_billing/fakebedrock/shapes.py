"""Response bodies and stream chunks of the fake Bedrock, one shape per model family.

A stream is returned as three lists so the server can cut it where a fault asks:
``head`` (opening chunks), ``deltas`` (one per piece of text, with the tokens it carries)
and ``tail`` (closing chunks; the last one carries ``amazon-bedrock-invocationMetrics``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bedrock_billing.fakebedrock.models import ANTHROPIC, LLAMA, MISTRAL, NOVA, TITAN, Outcome


@dataclass
class Stream:
    head: list[dict] = field(default_factory=list)
    deltas: list[tuple[dict, int]] = field(default_factory=list)
    tail: list[dict] = field(default_factory=list)


def invocation_metrics(out: Outcome) -> dict:
    return {
        "inputTokenCount": out.input_tokens,
        "outputTokenCount": out.output_tokens,
        "invocationLatency": out.latency_ms,
        "firstByteLatency": out.first_byte_latency_ms,
        "cacheReadInputTokenCount": out.cache_read_input_tokens,
        "cacheWriteInputTokenCount": out.cache_write_input_tokens,
    }


def _anthropic_usage(out: Outcome) -> dict:
    # Anthropic's Messages usage: ``cache_creation`` splits the writes by lifetime.
    return {
        "input_tokens": out.input_tokens,
        "output_tokens": out.output_tokens,
        "cache_read_input_tokens": out.cache_read_input_tokens,
        "cache_creation_input_tokens": out.cache_write_input_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": out.cache_write_input_tokens
            - out.cache_write_1h_input_tokens,
            "ephemeral_1h_input_tokens": out.cache_write_1h_input_tokens,
        },
    }


def _nova_usage(out: Outcome) -> dict:
    return {
        "inputTokens": out.input_tokens,
        "outputTokens": out.output_tokens,
        "totalTokens": out.input_tokens + out.output_tokens,
        "cacheReadInputTokenCount": out.cache_read_input_tokens,
        "cacheWriteInputTokenCount": out.cache_write_input_tokens,
    }


def stop_reason(family: str, out: Outcome) -> str:
    if family in (ANTHROPIC, NOVA):
        return "max_tokens" if out.hit_max_tokens else "end_turn"
    if family == TITAN:
        return "LENGTH" if out.hit_max_tokens else "FINISH"
    return "length" if out.hit_max_tokens else "stop"


def invoke_body(family: str, model: str, message_id: str, out: Outcome) -> dict:
    reason = stop_reason(family, out)
    if family == ANTHROPIC:
        return {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": out.text}],
            "stop_reason": reason,
            "stop_sequence": None,
            "usage": _anthropic_usage(out),
        }
    if family == TITAN:
        return {
            "inputTextTokenCount": out.input_tokens,
            "results": [
                {
                    "tokenCount": out.output_tokens,
                    "outputText": out.text,
                    "completionReason": reason,
                }
            ],
        }
    if family == LLAMA:
        return {
            "generation": out.text,
            "prompt_token_count": out.input_tokens,
            "generation_token_count": out.output_tokens,
            "stop_reason": reason,
        }
    if family == MISTRAL:
        return {"outputs": [{"text": out.text, "stop_reason": reason}]}
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": out.text}]}},
        "stopReason": reason,
        "usage": _nova_usage(out),
    }


def _joined(pieces: list[list[str]]) -> list[tuple[str, int]]:
    # Every piece after the first starts with the space that separates it from the last.
    return [((" " if i else "") + " ".join(p), len(p)) for i, p in enumerate(pieces)]


def invoke_stream(
    family: str, model: str, message_id: str, out: Outcome, per_piece: int = 3
) -> Stream:
    texts = _joined(out.pieces(per_piece))
    reason = stop_reason(family, out)
    metrics = {"amazon-bedrock-invocationMetrics": invocation_metrics(out)}
    if family == ANTHROPIC:
        start_usage = {**_anthropic_usage(out), "output_tokens": 1}
        return Stream(
            head=[
                {
                    "type": "message_start",
                    "message": {
                        "id": message_id,
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": start_usage,
                    },
                },
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ],
            deltas=[
                (
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": t},
                    },
                    n,
                )
                for t, n in texts
            ],
            tail=[
                {"type": "content_block_stop", "index": 0},
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": reason, "stop_sequence": None},
                    "usage": {"output_tokens": out.output_tokens},
                },
                {"type": "message_stop", **metrics},
            ],
        )
    if family == TITAN:
        deltas, total = [], 0
        for i, (t, n) in enumerate(texts):
            total += n
            chunk = {
                "outputText": t,
                "index": 0,
                "totalOutputTextTokenCount": total,
                "completionReason": None,
                "inputTextTokenCount": out.input_tokens if i == 0 else None,
            }
            deltas.append((chunk, n))
        last = {
            "outputText": "",
            "index": 0,
            "totalOutputTextTokenCount": out.output_tokens,
            "completionReason": reason,
            "inputTextTokenCount": None,
            **metrics,
        }
        return Stream(deltas=deltas, tail=[last])
    if family == LLAMA:
        deltas, total = [], 0
        for i, (t, n) in enumerate(texts):
            total += n
            chunk = {
                "generation": t,
                "prompt_token_count": out.input_tokens if i == 0 else None,
                "generation_token_count": total,
                "stop_reason": None,
            }
            deltas.append((chunk, n))
        last = {
            "generation": "",
            "prompt_token_count": None,
            "generation_token_count": out.output_tokens,
            "stop_reason": reason,
            **metrics,
        }
        return Stream(deltas=deltas, tail=[last])
    if family == MISTRAL:
        return Stream(
            deltas=[({"outputs": [{"text": t, "stop_reason": None}]}, n) for t, n in texts],
            tail=[{"outputs": [{"text": "", "stop_reason": reason}], **metrics}],
        )
    return Stream(
        head=[{"messageStart": {"role": "assistant"}}],
        deltas=[
            ({"contentBlockDelta": {"delta": {"text": t}, "contentBlockIndex": 0}}, n)
            for t, n in texts
        ],
        tail=[
            {"contentBlockStop": {"contentBlockIndex": 0}},
            {"messageStop": {"stopReason": reason}},
            {"metadata": {"usage": _nova_usage(out), "metrics": {}, "trace": {}}, **metrics},
        ],
    )


def converse_usage(out: Outcome) -> dict:
    usage = {
        "inputTokens": out.input_tokens,
        "outputTokens": out.output_tokens,
        "totalTokens": out.input_tokens + out.output_tokens,
        "cacheReadInputTokens": out.cache_read_input_tokens,
        "cacheWriteInputTokens": out.cache_write_input_tokens,
    }
    if out.cache_write_input_tokens:
        # botocore's TokenUsage.cacheDetails: writes by lifetime, 1h before 5m.
        details = [
            ("1h", out.cache_write_1h_input_tokens),
            ("5m", out.cache_write_input_tokens - out.cache_write_1h_input_tokens),
        ]
        usage["cacheDetails"] = [{"ttl": t, "inputTokens": n} for t, n in details if n]
    return usage


def _tier(out: Outcome) -> dict:
    return {"serviceTier": {"type": out.service_tier}} if out.service_tier else {}


def converse_body(out: Outcome) -> dict:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": out.text}]}},
        "stopReason": stop_reason(NOVA, out),
        "usage": converse_usage(out),
        "metrics": {"latencyMs": out.latency_ms},
        **_tier(out),
    }


def converse_stream(out: Outcome, per_piece: int = 3) -> Stream:
    """ConverseStream's events as ``{"<event type>": payload}``; no base64 wrapping."""
    return Stream(
        head=[{"messageStart": {"role": "assistant"}}],
        deltas=[
            ({"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": t}}}, n)
            for t, n in _joined(out.pieces(per_piece))
        ],
        tail=[
            {"contentBlockStop": {"contentBlockIndex": 0}},
            {"messageStop": {"stopReason": stop_reason(NOVA, out)}},
            {
                "metadata": {
                    "usage": converse_usage(out),
                    "metrics": {"latencyMs": out.latency_ms},
                    **_tier(out),
                }
            },
        ],
    )
