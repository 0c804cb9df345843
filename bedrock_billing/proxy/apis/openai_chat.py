"""OpenAI's Chat Completions API: ``POST {prefix}/v1/chat/completions``, translated to
Bedrock's Converse / ConverseStream, so every model Converse serves answers the ``openai``
SDK and the tools built on it.

Translated: messages (system and developer to Converse's ``system``; text and ``data:``
image parts; assistant tool calls to ``toolUse``; ``tool`` messages to ``toolResult``),
``max_tokens`` / ``max_completion_tokens``, ``temperature``, ``top_p``, ``stop``, tools and
``tool_choice``, ``response_format`` (Converse's ``outputConfig.textFormat``). Ignored,
since the answer does not depend on them: ``IGNORED``. Refused with a 400 naming the
parameter, since dropping them would change the answer: everything else OpenAI defines
that Converse has no equivalent for (``n`` > 1, ``logprobs``, penalties, ...).

Answers are ``chat.completion`` objects, streams ``chat.completion.chunk`` events ending
``data: [DONE]`` (with a final usage chunk when ``stream_options.include_usage``), errors
``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time

from ..bedrock import Result
from ..call import CONVERSE, Call, StreamEvent
from ..errors import ProxyError, bad_request
from ..events import Request, read_json_body
from .base import Adapter, body_response, dumps
from .gateway import SSE_HEADERS, api_key_or_bearer, is_lasting_limit, retry_headers

IGNORED = (
    "user", "store", "metadata", "service_tier", "parallel_tool_calls", "seed",
    "prompt_cache_key", "safety_identifier",
)
# Parameters with a neutral value that may be sent as such (the SDKs and frameworks often
# send the defaults); any other value is refused.
_NEUTRAL = {
    "n": (1, None),
    "logprobs": (False, None),
    "top_logprobs": (0, None),
    "frequency_penalty": (0, 0.0, None),
    "presence_penalty": (0, 0.0, None),
    "logit_bias": ({}, None),
    "modalities": (["text"], None),
}
_HANDLED = (
    "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens",
    "temperature", "top_p", "stop", "tools", "tool_choice", "response_format",
)
_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
_DATA_URL = re.compile(r"^data:image/(?P<fmt>png|jpeg|jpg|gif|webp);base64,(?P<data>.*)$", re.S)


def _refuse(param: str, message: str) -> ProxyError:
    err = bad_request("unsupported_parameter", message)
    err.param = param
    return err


# ---- request: OpenAI -> Converse


def _text(content, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise _refuse("messages", f"{where}: only text parts are allowed here")
            if not isinstance(part.get("text"), str):
                raise bad_request("invalid_request", f"{where}: text must be a string")
            parts.append(part["text"])
        return "\n".join(parts)
    raise bad_request("invalid_request", f"{where}: content must be a string or a list")


def _image(part: dict, where: str) -> dict:
    url = part.get("image_url")
    url = url.get("url") if isinstance(url, dict) else url
    if not isinstance(url, str):
        raise bad_request("invalid_request", f"{where}: image_url.url is required")
    found = _DATA_URL.match(url)
    if not found:
        raise _refuse(
            "messages", f"{where}: images must be sent as data: URLs (the proxy fetches no URL)"
        )
    try:
        base64.b64decode(found.group("data"), validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("invalid_request", f"{where}: the image is not valid base64") from None
    fmt = "jpeg" if found.group("fmt") == "jpg" else found.group("fmt")
    return {"image": {"format": fmt, "source": {"bytes": found.group("data")}}}


def _user_content(content, where: str) -> list[dict]:
    if isinstance(content, str):
        return [{"text": content}]
    if not isinstance(content, list):
        raise bad_request("invalid_request", f"{where}: content must be a string or a list")
    blocks = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            blocks.append({"text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image(part, f"{where}[{i}]"))
        else:
            what = f"{where}[{i}]: content part {str(kind)[:32]!r} is not supported"
            raise _refuse("messages", what)
    return blocks


def _tool_calls(calls, where: str) -> list[dict]:
    if not isinstance(calls, list):
        raise bad_request("invalid_request", f"{where}.tool_calls must be a list")
    blocks = []
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(call.get("id"), str):
            raise bad_request("invalid_request", f"{where}.tool_calls: id and function needed")
        try:
            args = json.loads(function.get("arguments") or "{}")
        except (TypeError, ValueError):
            raise bad_request(
                "invalid_request", f"{where}.tool_calls: arguments must be a JSON string"
            ) from None
        blocks.append(
            {"toolUse": {"toolUseId": call["id"], "name": function.get("name"), "input": args}}
        )
    return blocks


def _messages(messages) -> tuple[list[dict], list[dict]]:
    if not isinstance(messages, list) or not messages:
        raise bad_request("invalid_request", "messages: a non-empty list is required")
    system: list[dict] = []
    out: list[dict] = []

    def add(role: str, blocks: list[dict]) -> None:
        if out and out[-1]["role"] == role:  # Converse wants turns to alternate
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise bad_request("invalid_request", f"{where} must be an object")
        role, content = message.get("role"), message.get("content")
        if role in ("system", "developer"):
            system.append({"text": _text(content, where)})
        elif role == "user":
            add("user", _user_content(content, where))
        elif role == "assistant":
            blocks = []
            if content not in (None, "", []):
                blocks.append({"text": _text(content, where)})
            if message.get("tool_calls"):
                blocks.extend(_tool_calls(message["tool_calls"], where))
            if not blocks:
                raise bad_request("invalid_request", f"{where}: content or tool_calls needed")
            add("assistant", blocks)
        elif role == "tool":
            if not isinstance(message.get("tool_call_id"), str):
                raise bad_request("invalid_request", f"{where}: tool_call_id is required")
            result = {"toolUseId": message["tool_call_id"],
                      "content": [{"text": _text(content, where)}]}
            add("user", [{"toolResult": result}])
        else:
            raise bad_request("invalid_request", f"{where}: unknown role {str(role)[:32]!r}")
    return system, out


def _tools(tools, choice) -> dict | None:
    if choice == "none":
        return None  # Converse has no "none": the tools are left out
    if not isinstance(tools, list):
        raise bad_request("invalid_request", "tools must be a list")
    specs = []
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(
            function, dict
        ):
            raise _refuse("tools", "tools: only function tools are supported")
        spec = {
            "name": function.get("name"),
            "inputSchema": {"json": function.get("parameters") or {"type": "object"}},
        }
        if function.get("description"):
            spec["description"] = function["description"]
        specs.append({"toolSpec": spec})
    config: dict = {"tools": specs}
    if choice in (None, "auto"):
        pass
    elif choice == "required":
        config["toolChoice"] = {"any": {}}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        config["toolChoice"] = {"tool": {"name": choice["function"].get("name")}}
    else:
        raise bad_request("invalid_request", "tool_choice: none, auto, required or a function")
    return config


def _response_format(value) -> dict | None:
    if not isinstance(value, dict) or value.get("type") in (None, "text"):
        return None
    if value["type"] == "json_object":
        schema, name = {"type": "object"}, "json_object"
    elif value["type"] == "json_schema" and isinstance(value.get("json_schema"), dict):
        spec = value["json_schema"]
        schema, name = spec.get("schema") or {"type": "object"}, spec.get("name") or "answer"
    else:
        raise bad_request("invalid_request", "response_format: text, json_object or json_schema")
    structure = {"jsonSchema": {"schema": json.dumps(schema), "name": name}}
    return {"textFormat": {"type": "json_schema", "structure": structure}}


def to_converse(body: dict) -> dict:
    """An OpenAI request as Converse's members (model and stream taken out)."""
    for key, value in body.items():
        if key in _HANDLED or key in IGNORED:
            continue
        if key in _NEUTRAL:
            if value not in _NEUTRAL[key]:
                raise _refuse(key, f"{key} is not supported by this endpoint (send {key} "
                              f"as {json.dumps(_NEUTRAL[key][0])} or leave it out)")
            continue
        raise _refuse(key, f"the parameter {key[:64]!r} is not supported by this endpoint")
    system, messages = _messages(body.get("messages"))
    out: dict = {"messages": messages}
    if system:
        out["system"] = system
    config = {}
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None:
        config["maxTokens"] = limit
    if body.get("temperature") is not None:
        config["temperature"] = body["temperature"]
    if body.get("top_p") is not None:
        config["topP"] = body["top_p"]
    stop = body.get("stop")
    if stop is not None:
        config["stopSequences"] = [stop] if isinstance(stop, str) else stop
    if config:
        out["inferenceConfig"] = config
    if body.get("tools"):
        tools = _tools(body["tools"], body.get("tool_choice"))
        if tools:
            out["toolConfig"] = tools
    response_format = _response_format(body.get("response_format"))
    if response_format:
        out["outputConfig"] = response_format
    return out


# ---- answer: Converse -> OpenAI


def usage(converse_usage: dict | None) -> dict:
    """OpenAI's usage from Converse's: prompt_tokens counts cached tokens too (OpenAI's
    meaning), with the cache reads under prompt_tokens_details.cached_tokens."""
    u = converse_usage or {}
    read = int(u.get("cacheReadInputTokens") or 0)
    write = int(u.get("cacheWriteInputTokens") or 0)
    prompt = int(u.get("inputTokens") or 0) + read + write
    completion = int(u.get("outputTokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": read, "cache_write_tokens": write},
    }


def from_converse(answer: dict, call: Call) -> dict:
    content = ((answer.get("output") or {}).get("message") or {}).get("content") or []
    texts, calls = [], []
    for block in content:
        if "text" in block:
            texts.append(block["text"])
        elif "toolUse" in block:
            use = block["toolUse"]
            calls.append(
                {
                    "id": use.get("toolUseId"),
                    "type": "function",
                    "function": {"name": use.get("name"), "arguments": dumps(use.get("input"))},
                }
            )
    message: dict = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": call.options["id"],
        "object": "chat.completion",
        "created": call.options["created"],
        "model": call.model_id,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": _FINISH.get(answer.get("stopReason"), "stop"),
                "logprobs": None,
            }
        ],
        "usage": usage(answer.get("usage")),
    }


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


def error_body(err: ProxyError) -> dict:
    message = err.aws_message if err.aws_code and err.aws_message else err.message
    kind = "insufficient_quota" if is_lasting_limit(err) else _ERROR_TYPES.get(
        err.status, "invalid_request_error" if err.status < 500 else "server_error"
    )
    param = getattr(err, "param", None)
    return {"error": {"message": message, "type": kind, "param": param, "code": err.code}}


class ChatCompletionsAdapter(Adapter):
    name = "openai-chat"

    def token(self, request: Request) -> str:
        return api_key_or_bearer(request.headers)

    def parse(self, request: Request, params: dict[str, str], max_body: int) -> Call:
        body = read_json_body(request, max_body)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise bad_request("invalid_request", "model: a model name is required")
        stream = body.get("stream", False)
        if stream is None:
            stream = False
        if not isinstance(stream, bool):
            raise bad_request("invalid_request", "stream: must be true or false")
        options = body.get("stream_options") or {}
        if not isinstance(options, dict):
            raise bad_request("invalid_request", "stream_options must be an object")
        converse = to_converse(body)
        return Call(
            CONVERSE,
            model,
            stream=stream,
            body=converse,
            wire_api=self.name,
            options={
                "id": "chatcmpl-" + request.request_id.replace("-", "")[:32],
                "created": int(time.time()),
                "include_usage": options.get("include_usage") is True,
                "tools": {},  # a stream's contentBlockIndex -> tool call index
            },
        )

    def render(self, call: Call, result: Result, headers: dict[str, str]) -> dict:
        answer = from_converse(json.loads(result.body), call)
        return body_response(
            200, dumps(answer).encode(), {**headers, "Content-Type": "application/json"}
        )

    def refuse(self, err: ProxyError, request_id: str, headers: dict[str, str]) -> dict:
        out = {
            **headers,
            **retry_headers(err),
            "Content-Type": "application/json",
            "x-request-id": request_id,
        }
        return body_response(err.status, dumps(error_body(err)).encode(), out)

    # ---- streams

    def stream_headers(self, call: Call) -> dict[str, str]:
        return dict(SSE_HEADERS)

    def _chunk(self, call: Call, delta: dict | None, finish=None, use=None) -> bytes:
        chunk = {
            "id": call.options["id"],
            "object": "chat.completion.chunk",
            "created": call.options["created"],
            "model": call.model_id,
            "choices": []
            if delta is None
            else [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }
        if use is not None:
            chunk["usage"] = use
        return b"data: " + dumps(chunk).encode() + b"\n\n"

    def encode_event(self, call: Call, event: StreamEvent) -> bytes:
        kind, data = event.kind, event.payload
        tools = call.options.setdefault("tools", {})
        if kind == "messageStart":
            return self._chunk(call, {"role": "assistant", "content": ""})
        if kind == "contentBlockStart":
            use = (data.get("start") or {}).get("toolUse")
            if isinstance(use, dict):
                index = tools.setdefault(data.get("contentBlockIndex"), len(tools))
                call_delta = {
                    "index": index,
                    "id": use.get("toolUseId"),
                    "type": "function",
                    "function": {"name": use.get("name"), "arguments": ""},
                }
                return self._chunk(call, {"tool_calls": [call_delta]})
            return b""
        if kind == "contentBlockDelta":
            delta = data.get("delta") or {}
            if isinstance(delta.get("text"), str):
                return self._chunk(call, {"content": delta["text"]})
            use = delta.get("toolUse")
            if isinstance(use, dict):
                index = tools.setdefault(data.get("contentBlockIndex"), len(tools))
                call_delta = {"index": index, "function": {"arguments": use.get("input") or ""}}
                return self._chunk(call, {"tool_calls": [call_delta]})
            return b""
        if kind == "messageStop":
            return self._chunk(call, {}, _FINISH.get(data.get("stopReason"), "stop"))
        if kind == "metadata" and call.options.get("include_usage"):
            return self._chunk(call, None, use=usage(data.get("usage")))
        return b""

    def encode_end(self, call: Call) -> bytes:
        return b"data: [DONE]\n\n"

    def encode_error(self, call: Call, err: ProxyError, request_id: str) -> bytes:
        return b"data: " + dumps(error_body(err)).encode() + b"\n\n"


CHAT_COMPLETIONS = ChatCompletionsAdapter()
