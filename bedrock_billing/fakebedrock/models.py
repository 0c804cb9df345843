"""What the fake Bedrock answers: model families, request parsing, token counts, bodies.

Pure functions, standard library only; ``server`` does the HTTP. Each family's
request and response shapes follow Bedrock's "Inference parameters" pages. Token counts
are made up but consistent: input tokens grow with the prompt (about 4 characters a
token), output tokens come from a seeded RNG bounded by the request's max tokens, and
every output "word" is exactly one token, so a stream cut after k words carried k tokens.
The words have three letters: with the space between them an answer has four characters a
token, English text's usual ratio (docs/fake-bedrock.md).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

ANTHROPIC = "anthropic"
TITAN = "titan"
LLAMA = "llama"
MISTRAL = "mistral"
NOVA = "nova"

# Geography prefixes of system-defined cross-region inference profiles
# ("us.anthropic.claude-3-haiku-20240307-v1:0").
_GEO_PREFIXES = {"us", "eu", "apac", "us-gov", "global", "jp", "au", "ca", "ap"}
_DEFAULT_MAX_TOKENS = 512
# Caps the made-up answer length so tests stay fast whatever max_tokens says.
_MAX_GENERATED = 256
_PER_MESSAGE_OVERHEAD = 3
# Three letters each: with its separating space every token is four characters.
_WORDS = "fee tax sum net pay due day log api key row set use run bid ask cap tip tab ink".split()


class BadRequest(ValueError):
    """The body does not fit the model's schema: Bedrock answers ValidationException."""


def foundation_model(model_id: str) -> str:
    """The foundation model behind a model id, inference profile id or ARN."""
    mid = model_id.rsplit("/", 1)[-1] if model_id.startswith("arn:") else model_id
    head, dot, rest = mid.partition(".")
    if dot and head in _GEO_PREFIXES and "." in rest:
        return rest
    return mid


def family_of(foundation_id: str) -> str | None:
    if foundation_id.startswith("anthropic.claude"):
        return ANTHROPIC
    if foundation_id.startswith("amazon.titan-text"):
        return TITAN
    if foundation_id.startswith("meta.llama"):
        return LLAMA
    if foundation_id.startswith("mistral."):
        return MISTRAL
    if foundation_id.startswith("amazon.nova"):
        return NOVA
    return None


def count_tokens(text: str) -> int:
    return (len(text) + 3) // 4


@dataclass
class Prompt:
    """What the usage depends on: the prompt text, its cached prefix, the answer bound."""

    text: str = ""
    cached_prefix: str = ""
    messages: int = 1
    max_tokens: int = _DEFAULT_MAX_TOKENS
    cache_ttl: str = "5m"  # the last cache marker's lifetime: "5m" (default) or "1h"


def _as_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest(f"{name}: expected an integer >= 1")
    return value


def _object(body: dict, key: str) -> dict:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{key}: expected an object")
    return value


def _blocks(value, name: str) -> list:
    """A string or a list of content blocks, as a list."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise BadRequest(f"{name}: expected a string or a list of content blocks")
    return value


def _block_text(block) -> str:
    if isinstance(block, str):
        return block
    if isinstance(block, dict) and isinstance(block.get("text"), str):
        return block["text"]
    return json.dumps(block, sort_keys=True)


class _Collector:
    """Concatenates prompt parts; remembers the text up to the last cache marker."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.cached_upto = 0
        self.cache_ttl = "5m"

    def add(self, text: str) -> None:
        self.parts.append(text)

    def mark_cache(self, marker: object = None) -> None:
        """``marker``: the ``cache_control`` or ``cachePoint`` object; its ``ttl`` ("5m" or
        "1h", botocore's CacheTTL) is the lifetime of what it caches."""
        self.cached_upto = len(self.parts)
        ttl = marker.get("ttl") if isinstance(marker, dict) else None
        self.cache_ttl = "1h" if ttl == "1h" else "5m"

    def prompt(self, messages: int, max_tokens: int) -> Prompt:
        return Prompt(
            text="\n".join(self.parts),
            cached_prefix="\n".join(self.parts[: self.cached_upto]),
            messages=max(1, messages),
            max_tokens=max_tokens,
            cache_ttl=self.cache_ttl,
        )


def _require_messages(body: dict) -> list:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: expected a non-empty list")
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise BadRequest("messages: each message needs a role of user or assistant")
    return messages


def parse_anthropic(body: dict) -> Prompt:
    if not isinstance(body.get("anthropic_version"), str):
        raise BadRequest("anthropic_version: required")
    max_tokens = _as_int(body.get("max_tokens"), "max_tokens")
    collector = _Collector()
    for block in _blocks(body.get("system"), "system"):
        collector.add(_block_text(block))
        if isinstance(block, dict) and block.get("cache_control"):
            collector.mark_cache(block["cache_control"])
    messages = _require_messages(body)
    for message in messages:
        for block in _blocks(message.get("content"), "messages.content"):
            collector.add(_block_text(block))
            if isinstance(block, dict) and block.get("cache_control"):
                collector.mark_cache(block["cache_control"])
    return collector.prompt(len(messages), max_tokens)


def parse_messages_v1(body: dict, max_tokens: int | None) -> Prompt:
    """Converse and Nova's messages-v1: content blocks, ``cachePoint`` blocks mark the cache."""
    collector = _Collector()
    system = body.get("system")
    if system is not None and not isinstance(system, list):
        raise BadRequest("system: expected a list of content blocks")
    for block in system or []:
        if isinstance(block, dict) and "cachePoint" in block:
            collector.mark_cache(block["cachePoint"])
        else:
            collector.add(_block_text(block))
    messages = _require_messages(body)
    for message in messages:
        content = message.get("content")
        if not isinstance(content, list):
            raise BadRequest("messages.content: expected a list of content blocks")
        for block in content:
            if isinstance(block, dict) and "cachePoint" in block:
                collector.mark_cache(block["cachePoint"])
            else:
                collector.add(_block_text(block))
    bound = _DEFAULT_MAX_TOKENS if max_tokens is None else _as_int(max_tokens, "maxTokens")
    return collector.prompt(len(messages), bound)


def _plain_prompt(body: dict, key: str, max_tokens, max_name: str) -> Prompt:
    text = body.get(key)
    if not isinstance(text, str) or not text:
        raise BadRequest(f"{key}: required")
    bound = _DEFAULT_MAX_TOKENS if max_tokens is None else _as_int(max_tokens, max_name)
    return Prompt(text=text, max_tokens=bound)


def parse_invoke(family: str, body: dict) -> Prompt:
    if family == ANTHROPIC:
        return parse_anthropic(body)
    if family == TITAN:
        config = _object(body, "textGenerationConfig")
        return _plain_prompt(body, "inputText", config.get("maxTokenCount"), "maxTokenCount")
    if family == LLAMA:
        return _plain_prompt(body, "prompt", body.get("max_gen_len"), "max_gen_len")
    if family == MISTRAL:
        return _plain_prompt(body, "prompt", body.get("max_tokens"), "max_tokens")
    config = _object(body, "inferenceConfig")
    return parse_messages_v1(body, config.get("maxTokens", config.get("max_new_tokens")))


def parse_converse(body: dict) -> Prompt:
    config = _object(body, "inferenceConfig")
    return parse_messages_v1(body, config.get("maxTokens"))


@dataclass
class Outcome:
    """One answer: its usage as reported, its words (one token each) and latencies."""

    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int
    cache_write_input_tokens: int
    words: list[str] = field(default_factory=list)
    cache_write_1h_input_tokens: int = 0  # of the writes, those cached for an hour
    service_tier: str | None = None  # the tier asked for, echoed as Bedrock reports it
    hit_max_tokens: bool = False
    first_byte_latency_ms: int = 0
    latency_ms: int = 0

    @property
    def text(self) -> str:
        return " ".join(self.words)

    def pieces(self, per_piece: int = 3) -> list[list[str]]:
        """The words split as the stream's deltas send them."""
        return [self.words[i : i + per_piece] for i in range(0, len(self.words), per_piece)]


def prompt_tokens(prompt: Prompt) -> int:
    """A prompt's input tokens with no cache (what CountTokens answers)."""
    return count_tokens(prompt.text) + _PER_MESSAGE_OVERHEAD * prompt.messages


def make_outcome(
    prompt: Prompt,
    rng: random.Random,
    *,
    cache_hit: bool | None,
    fixed_input: int | None = None,
    fixed_output: int | None = None,
) -> Outcome:
    """``cache_hit``: None when the prompt has no cached prefix, else read (True) or write."""
    cached = count_tokens(prompt.cached_prefix) if cache_hit is not None else 0
    rest = prompt.text[len(prompt.cached_prefix) :] if cache_hit is not None else prompt.text
    input_tokens = count_tokens(rest) + _PER_MESSAGE_OVERHEAD * prompt.messages
    if fixed_input is not None:
        input_tokens = fixed_input
    upper = min(prompt.max_tokens, _MAX_GENERATED)
    if fixed_output is not None:
        output = min(fixed_output, prompt.max_tokens)
    else:
        output = rng.randint(min(upper, 8), upper)
    first_byte = rng.randint(80, 400)
    return Outcome(
        input_tokens=input_tokens,
        output_tokens=output,
        cache_read_input_tokens=cached if cache_hit else 0,
        cache_write_input_tokens=cached if cache_hit is False else 0,
        cache_write_1h_input_tokens=(
            cached if cache_hit is False and prompt.cache_ttl == "1h" else 0
        ),
        words=[rng.choice(_WORDS) for _ in range(output)],
        hit_max_tokens=output >= prompt.max_tokens,
        first_byte_latency_ms=first_byte,
        latency_ms=first_byte + 8 * output,
    )
