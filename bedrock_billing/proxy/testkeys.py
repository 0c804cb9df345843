"""The test keys' responder: a deterministic stand-in for the Bedrock Runtime client.

A request made with a test key (its token item has ``test: true``; the ``bbk_test_``
prefix is only a hint for people) is validated, authenticated and admitted like any other,
then answered by :class:`TestResponder` instead of Bedrock. It has the five methods of the
boto3 client the pipeline calls and answers in their response shapes, so
``bedrock.call_bedrock`` and every wire adapter render it exactly as they render Bedrock:
Converse and ConverseStream members, InvokeModel bodies in the model family's own format
(Anthropic Messages, Titan, Llama, a generic one otherwise), stream chunks, CountTokens.

The answer depends only on the request (a hash of it), so a customer's integration test
is repeatable. It is in the proxy package (the sandbox's fake Bedrock is not in the Lambda
zip). Nothing here is billed: the meter records a test request in ``test_requests`` only.
"""

from __future__ import annotations

import hashlib
import json
import uuid

from .usage import HEADER_INPUT, HEADER_OUTPUT

WORDS = ("this", "is", "a", "test", "answer", "from", "the", "proxy", "no", "model", "ran")


def _digest(params: dict) -> str:
    body = params.get("body")
    if isinstance(body, (bytes, bytearray)):
        text = bytes(body).decode("utf-8", "replace")
    else:
        text = json.dumps(
            {k: v for k, v in params.items() if k != "body"}, sort_keys=True, default=str
        )
    return hashlib.sha256((str(params.get("modelId")) + text).encode()).hexdigest()


def answer_text(params: dict) -> str:
    """A short sentence chosen by the request's hash: same request, same answer."""
    digest = _digest(params)
    return f"[test] {' '.join(WORDS)} ({digest[:12]})"


def _input_tokens(params: dict) -> int:
    body = params.get("body")
    size = (
        len(body) if isinstance(body, (bytes, bytearray)) else len(json.dumps(params, default=str))
    )
    return max(1, size // 4)


def _request_id(params: dict) -> str:
    return str(uuid.UUID(_digest(params)[:32]))


def _meta(params: dict, inp: int, out: int) -> dict:
    return {
        "RequestId": _request_id(params),
        "HTTPStatusCode": 200,
        "HTTPHeaders": {HEADER_INPUT: str(inp), HEADER_OUTPUT: str(out)},
    }


class _Body:
    def __init__(self, data: bytes):
        self._data = data

    def read(self) -> bytes:
        return self._data


def _family(model_id: str) -> str:
    for family in ("anthropic", "amazon.titan", "meta"):
        if family in model_id:
            return family
    return "generic"


def _invoke_body(model_id: str, text: str, inp: int, out: int) -> dict:
    family = _family(model_id)
    if family == "anthropic":
        return {
            "id": "msg_test",
            "type": "message",
            "role": "assistant",
            "model": model_id,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": inp, "output_tokens": out},
        }
    if family == "amazon.titan":
        return {
            "inputTextTokenCount": inp,
            "results": [{"tokenCount": out, "outputText": text, "completionReason": "FINISH"}],
        }
    if family == "meta":
        return {
            "generation": text,
            "prompt_token_count": inp,
            "generation_token_count": out,
            "stop_reason": "stop",
        }
    return {"outputText": text, "inputTokens": inp, "outputTokens": out}


def _invoke_chunks(model_id: str, text: str, inp: int, out: int) -> list[dict]:
    metrics = {
        "amazon-bedrock-invocationMetrics": {
            "inputTokenCount": inp,
            "outputTokenCount": out,
            "invocationLatency": 0,
            "firstByteLatency": 0,
        }
    }
    if _family(model_id) == "anthropic":
        return [
            {
                "type": "message_start",
                "message": {
                    "id": "msg_test",
                    "type": "message",
                    "role": "assistant",
                    "model": model_id,
                    "content": [],
                    "usage": {"input_tokens": inp, "output_tokens": 0},
                },
            },
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": text},
            },
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": out},
            },
            {"type": "message_stop", **metrics},
        ]
    last = _invoke_body(model_id, text, inp, out)
    return [{**last, **metrics}]


class TestResponder:
    """Bedrock Runtime's five calls, answered without a network call. ``calls`` counts them
    (tests check it; a container serves many)."""

    __test__ = False  # not a pytest class

    def __init__(self) -> None:
        self.calls = 0

    def _answer(self, params: dict) -> tuple[str, int, int]:
        self.calls += 1
        text = answer_text(params)
        return text, _input_tokens(params), len(text.split())

    def invoke_model(self, **params) -> dict:
        text, inp, out = self._answer(params)
        body = json.dumps(_invoke_body(str(params.get("modelId")), text, inp, out)).encode()
        return {
            "body": _Body(body),
            "contentType": "application/json",
            "ResponseMetadata": _meta(params, inp, out),
        }

    def invoke_model_with_response_stream(self, **params) -> dict:
        text, inp, out = self._answer(params)
        chunks = _invoke_chunks(str(params.get("modelId")), text, inp, out)
        return {
            "body": [{"chunk": {"bytes": json.dumps(c).encode()}} for c in chunks],
            "contentType": "application/json",
            "ResponseMetadata": _meta(params, inp, out),
        }

    def converse(self, **params) -> dict:
        text, inp, out = self._answer(params)
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": inp, "outputTokens": out, "totalTokens": inp + out},
            "metrics": {"latencyMs": 0},
            "ResponseMetadata": _meta(params, inp, out),
        }

    def converse_stream(self, **params) -> dict:
        text, inp, out = self._answer(params)
        events = [
            {"messageStart": {"role": "assistant"}},
            {"contentBlockDelta": {"delta": {"text": text}, "contentBlockIndex": 0}},
            {"contentBlockStop": {"contentBlockIndex": 0}},
            {"messageStop": {"stopReason": "end_turn"}},
            {
                "metadata": {
                    "usage": {"inputTokens": inp, "outputTokens": out, "totalTokens": inp + out},
                    "metrics": {"latencyMs": 0},
                }
            },
        ]
        return {"stream": events, "ResponseMetadata": _meta(params, inp, out)}

    def count_tokens(self, **params) -> dict:
        self.calls += 1
        return {"inputTokens": _input_tokens(params), "ResponseMetadata": _meta(params, 0, 0)}
