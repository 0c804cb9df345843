"""The route table: which wire API adapter serves a method and path.

Every route is matched under any path prefix (an API Gateway stage, a custom domain's base
path, a Function URL's root), on the path as API Gateway passes it (percent-encoded or not).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass

from ..call import CONVERSE, COUNT_TOKENS, INVOKE
from ..errors import METHOD_NOT_ALLOWED, NOT_FOUND, ProxyError
from .base import Adapter
from .bedrock_runtime import BedrockRuntimeAdapter
from .legacy import CONVERSE_API, INVOKE_API

# Operations the proxy answers itself (no token lookup beyond the caller's own, no Bedrock).
PING = "ping"
LIST_PROFILES = "list_inference_profiles"
LIST_MODELS = "list_models"  # GET /v1/models (OpenAI's and Anthropic's model list)
# The customer portal (apis/portal.py): the page and its assets, and the caller's account.
PORTAL_PAGE, PORTAL_ASSET, PORTAL_REDIRECT = "portal_page", "portal_asset", "portal_redirect"
PORTAL_ACCOUNT, PORTAL_USAGE = "portal_account", "portal_usage"
PORTAL_INVOICES, PORTAL_INVOICE = "portal_invoices", "portal_invoice"
PORTAL_MARKERS = (
    PORTAL_PAGE, PORTAL_ASSET, PORTAL_REDIRECT,
    PORTAL_ACCOUNT, PORTAL_USAGE, PORTAL_INVOICES, PORTAL_INVOICE,
)  # fmt: skip

_MODEL = r"^(?:.*?)/model/(?P<model>[^?#]+?)/"


class _Lazy:
    """An adapter loaded on its first use, so the translators of APIs a container never
    serves cost its cold start nothing (docs/proxy.md, "Lean cold start")."""

    def __init__(self, module: str, name: str):
        self._where = (module, name)
        self._adapter = None

    def __getattr__(self, attr):
        if self._adapter is None:
            module, name = self._where
            self._adapter = getattr(importlib.import_module(module, __name__), name)
        return getattr(self._adapter, attr)


MESSAGES = _Lazy(".anthropic_messages", "MESSAGES")
COUNT_MESSAGE_TOKENS = _Lazy(".anthropic_messages", "COUNT_MESSAGE_TOKENS")
CHAT_COMPLETIONS = _Lazy(".openai_chat", "CHAT_COMPLETIONS")
PORTAL = _Lazy(".portal", "PORTAL")


@dataclass(frozen=True)
class Route:
    methods: tuple[str, ...]
    pattern: re.Pattern
    adapter: Adapter
    local: str | None = None  # PING / LIST_PROFILES: answered by the proxy itself


def _bedrock(suffix: str, operation: str, stream: bool = False) -> Route:
    return Route(
        ("POST",),
        re.compile(_MODEL + re.escape(suffix) + r"/?$"),
        BedrockRuntimeAdapter(operation, stream),
    )


BEDROCK = BedrockRuntimeAdapter(INVOKE)

ROUTES: tuple[Route, ...] = (
    _bedrock("invoke", INVOKE),
    _bedrock("invoke-with-response-stream", INVOKE, stream=True),
    _bedrock("converse", CONVERSE),
    _bedrock("converse-stream", CONVERSE, stream=True),
    _bedrock("count-tokens", COUNT_TOKENS),
    Route(("GET",), re.compile(r"^(?:.*)/inference-profiles/?$"), BEDROCK, LIST_PROFILES),
    # Anthropic's Messages API and OpenAI's Chat Completions (matched on the path: Claude
    # Code adds ?beta=true, which API Gateway passes apart from the path).
    Route(("POST",), re.compile(r"^(?:.*?)/v1/messages/count_tokens/?$"), COUNT_MESSAGE_TOKENS),
    Route(("POST",), re.compile(r"^(?:.*?)/v1/messages/?$"), MESSAGES),
    Route(("POST",), re.compile(r"^(?:.*?)/v1/chat/completions/?$"), CHAT_COMPLETIONS),
    Route(("GET",), re.compile(r"^(?:.*?)/v1/models/?$"), MESSAGES, LIST_MODELS),
    # The customer portal: a static page and the caller's own account (GET only).
    Route(("GET",), re.compile(r"^(?:.*?)/portal$"), PORTAL, PORTAL_PAGE),
    Route(("GET",), re.compile(r"^(?:.*?)/portal/$"), PORTAL, PORTAL_REDIRECT),
    Route(
        ("GET",),
        re.compile(r"^(?:.*?)/portal/(?P<asset>portal\.(?:js|css))$"),
        PORTAL,
        PORTAL_ASSET,
    ),
    Route(("GET",), re.compile(r"^(?:.*?)/v1/account/?$"), PORTAL, PORTAL_ACCOUNT),
    Route(("GET",), re.compile(r"^(?:.*?)/v1/account/usage/?$"), PORTAL, PORTAL_USAGE),
    Route(("GET",), re.compile(r"^(?:.*?)/v1/account/invoices/?$"), PORTAL, PORTAL_INVOICES),
    Route(
        ("GET",),
        re.compile(r"^(?:.*?)/v1/account/invoices/(?P<invoice>[^/]+)/?$"),
        PORTAL,
        PORTAL_INVOICE,
    ),
    Route(("POST",), re.compile(r"^(?:.*)/bedrock/converse/?$"), CONVERSE_API),
    Route(("POST",), re.compile(r"^(?:.*/bedrock)?/?$"), INVOKE_API),
    # The API's root (a stage's root in an HTTP API event): a health check for clients
    # that probe the endpoint before use (Claude Code sends HEAD /).
    Route(("HEAD", "GET"), re.compile(r"^/?(?!bedrock/?$)[^/]*/?$"), BEDROCK, PING),
)


def adapter_for_path(path: str) -> Adapter:
    """Which format a refusal takes before a route is known (404, 405, a bad event)."""
    if "/model/" in path or path.rstrip("/").endswith("/inference-profiles"):
        return BEDROCK
    if "/v1/messages" in path or path.rstrip("/").endswith("/v1/models"):
        return MESSAGES
    if "/v1/chat/" in path:
        return CHAT_COMPLETIONS
    if "/v1/account" in path or path.rstrip("/").endswith("/portal") or "/portal/" in path:
        return PORTAL
    return INVOKE_API


def match(method: str, path: str) -> tuple[Route, dict[str, str]]:
    allowed: list[str] = []
    for route in ROUTES:
        found = route.pattern.match(path)
        if found is None:
            continue
        if method in route.methods:
            return route, found.groupdict()
        if route.local != PING:  # any one-segment path is a stage root: not a 405 there
            allowed.extend(route.methods)
    if allowed:
        raise ProxyError(405, METHOD_NOT_ALLOWED, f"use {' or '.join(sorted(set(allowed)))}")
    raise ProxyError(
        404,
        NOT_FOUND,
        "no such route: use POST /model/{modelId}/invoke (or converse, their streams) "
        "or POST /bedrock, /v1/messages, /v1/chat/completions",
    )
