"""A fake AWS Bedrock Runtime endpoint on loopback, speaking Bedrock's wire format.

boto3's real ``bedrock-runtime`` client works against it unchanged (``endpoint_url=`` or
``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``): InvokeModel, InvokeModelWithResponseStream,
Converse and ConverseStream, for Anthropic, Titan Text, Llama, Mistral and Nova bodies.
Every call is recorded under its request id with the usage the fake reported, so a test
can compare what a proxy counted with what "Bedrock" said. Faults are injected per
instance (``fail_next``) or by a marker in the prompt (``[[fake:throttling]]``), which
also reaches a fake running in another process.

Standard library only (``cryptography`` too when it serves HTTPS), so the sandbox and the
proxy's tests start it fast. Run alone: ``python -m bedrock_billing.fakebedrock``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import random
import re
import signal
import threading
import time
import uuid
from collections import Counter, deque
from urllib.parse import unquote

import bedrock_billing.fakebedrock.models as models
import bedrock_billing.fakebedrock.shapes as shapes
from bedrock_billing.core import eventstream
from bedrock_billing.fakebedrock.faults import (
    ERRORS,
    FAULT_KINDS,
    MARKER,
    SLOW_STREAM,
    SLOW_STREAM_EVENTS,
    SLOW_STREAM_INTERVAL,
    STREAM_FAULTS,
    Fault,
    fault_marker,
)
from bedrock_billing.localhttp.server import (
    BackgroundServer,
    LocalHandler,
    LocalServer,
    RequestError,
)

__all__ = ["ERRORS", "FAULT_KINDS", "STREAM_FAULTS", "FakeBedrock", "fault_marker", "main"]

_ROUTE = re.compile(
    r"^/model/(?P<model>[^/]+)/(?P<op>invoke|invoke-with-response-stream|converse|converse-stream)$"
)
_COUNT = re.compile(r"^/model/(?P<model>[^/]+)/count-tokens$")
_APIS = {
    "invoke": ("InvokeModel", False),
    "invoke-with-response-stream": ("InvokeModelWithResponseStream", True),
    "converse": ("Converse", False),
    "converse-stream": ("ConverseStream", True),
}
_ERROR_TYPE_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
MAX_BODY = 20 * 1024 * 1024  # Bedrock's own bound on a request body


class _Server(LocalServer):
    def __init__(self, address, fake: FakeBedrock, ssl_context=None) -> None:
        self.fake = fake
        super().__init__(address, _Handler, ssl_context)


class _Handler(LocalHandler):
    max_body = MAX_BODY
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.fake._serve(self)

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_POST  # noqa: N815


class FakeBedrock(BackgroundServer):
    """A Bedrock Runtime endpoint in a daemon thread on 127.0.0.1.

    ``seed`` makes every count reproducible: an answer's counts depend on the seed, the
    operation, the model, the request body (a Converse body less its ``requestMetadata``)
    and how many times that same body came before.
    ``input_tokens`` / ``output_tokens`` fix the counts instead (output still bounded by
    the request's max tokens). ``tls`` (a :class:`~bedrock_billing.localhttp.tls.TLSFiles`)
    serves HTTPS instead of HTTP, as the SDKs that send Bearer tokens require.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        seed: int = 0,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        tls=None,
    ) -> None:
        super().__init__(host, port, tls)
        self.seed = seed
        self.fixed_input_tokens = input_tokens
        self.fixed_output_tokens = output_tokens
        # The pause between text events of a ``[[fake:slow_stream]]`` answer.
        self.slow_stream_interval = SLOW_STREAM_INTERVAL
        self.calls: list[dict] = []
        # Called with (call record, request metadata) for each call the model served: the
        # model invocation log (fakebedrock/invocationlog.py), when the sandbox sets one.
        self.invocation_log = None
        self.usage_by_request_id: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._faults: deque[Fault] = deque()
        self._cache: set[str] = set()
        self._seen: Counter[str] = Counter()

    # -- lifecycle: BackgroundServer's url, start, stop, with ---------------------------

    thread_name = "fake-bedrock"

    def _make_server(self, address, ssl_context) -> _Server:
        return _Server(address, self, ssl_context)

    # -- test controls ---------------------------------------------------------------

    def fail_next(
        self,
        kind: str,
        *,
        times: int = 1,
        message: str | None = None,
        exception_type: str | None = None,
    ) -> None:
        """Answer the next ``times`` calls with a fault (see ``FAULT_KINDS``).

        Error kinds hit any call; ``stream_truncated`` (ends cleanly before the closing
        chunks, so no metrics) and ``stream_exception`` (an exception message after half
        the text; ``exception_type`` defaults to ``modelStreamErrorException``) wait for
        the next streaming call.
        """
        with self._lock:
            for _ in range(times):
                self._faults.append(Fault(kind, message, exception_type))

    def reset(self) -> None:
        """Forget calls, queued faults, the prompt cache and repeat counters."""
        with self._lock:
            self.calls.clear()
            self.usage_by_request_id.clear()
            self._faults.clear()
            self._cache.clear()
            self._seen.clear()

    # -- request handling ------------------------------------------------------------

    def _take_fault(self, raw: bytes, streamed: bool) -> Fault | None:
        for marker in MARKER.finditer(raw.decode("utf-8", "replace")):
            if marker.group(1) in FAULT_KINDS:
                fault = Fault(marker.group(1))
                if streamed or not fault.stream_only:
                    return fault
        with self._lock:
            if self._faults and (streamed or not self._faults[0].stream_only):
                return self._faults.popleft()
        return None

    def _serve(self, handler: _Handler) -> None:
        """One request; whatever it holds, the answer is Bedrock's JSON error at worst."""
        request_id = str(uuid.uuid4())
        try:
            raw = handler.read_body()
        except RequestError as err:
            self._send_error(handler, request_id, err.error_type, err.status, err.message)
            return
        path = handler.path.split("?", 1)[0]
        count = _COUNT.match(path)
        if handler.command == "POST" and count is not None:
            self._count_tokens(handler, request_id, unquote(count.group("model")), raw)
            return
        route = _ROUTE.match(path)
        if handler.command != "POST" or route is None:
            self._send_error(handler, request_id, "UnknownOperationException", 404, "")
            return
        try:
            self._handle(handler, request_id, route, raw)
        except Exception:  # a bug in the fake: still an answer, never a dropped connection
            handler.close_connection = True
            message = "The fake Bedrock failed on this request."
            self._send_error(handler, request_id, "InternalServerException", 500, message)

    def _handle(self, handler: _Handler, request_id: str, route, raw: bytes) -> None:
        model_id = unquote(route.group("model"))
        api, streamed = _APIS[route.group("op")]
        record = {
            "request_id": request_id,
            "api": api,
            "model_id": model_id,
            "foundation_model": models.foundation_model(model_id),
            "streamed": streamed,
            "input_tokens": 0,
            "output_tokens": 0,
            "output_text": "",
            "delivered_output_tokens": 0,
            "cache_read_input_tokens": 0,
            "cache_write_input_tokens": 0,
            "cache_write_1h_input_tokens": 0,
            "service_tier": None,
            "status": 200,
            "error": None,
            "metrics_reported": False,
            "fault": None,
            "request_metadata": None,
            # The scheme only ("Bearer", "AWS4-HMAC-SHA256"): never the credential itself.
            "auth_scheme": (handler.headers.get("Authorization") or "").split(" ", 1)[0][:32]
            or None,
        }
        fault = self._take_fault(raw, streamed)
        if fault is not None:
            record["fault"] = fault.kind
        if fault is not None and fault.kind in ERRORS:
            code, status, default = ERRORS[fault.kind]
            self._fail(handler, record, code, status, fault.message or default)
            return
        family = models.family_of(record["foundation_model"])
        if family is None:
            message = f"Model {model_id} not found."
            self._fail(handler, record, "ResourceNotFoundException", 404, message)
            return
        try:
            body = json.loads(raw or b"null")
            if not isinstance(body, dict):
                raise models.BadRequest("the body must be a JSON object")
            if api.startswith("Converse"):
                prompt = models.parse_converse(body)
            else:
                prompt = models.parse_invoke(family, body)
            record["request_metadata"] = _request_metadata(api, handler.headers, body)
        except (ValueError, RecursionError) as exc:  # BadRequest is a ValueError
            reason = exc if isinstance(exc, models.BadRequest) else "the body is not valid JSON"
            self._fail(handler, record, "ValidationException", 400, f"Malformed input: {reason}")
            return
        slow = streamed and SLOW_STREAM.encode() in raw
        if api.startswith("Converse"):
            # Tags do not change what a model answers: the same call with or without them
            # (through a proxy that adds its own, or straight) gets the same answer, so the
            # answer is keyed on the body less its metadata, in one canonical form.
            rest = {k: v for k, v in body.items() if k != "requestMetadata"}
            raw = json.dumps(rest, sort_keys=True, separators=(",", ":")).encode()
        outcome = self._outcome(api, record["foundation_model"], family, raw, prompt, slow)
        outcome.service_tier = _requested_tier(handler, body, api)
        if api == "InvokeModel":
            self._send_invoke(handler, record, family, outcome)
        elif api == "Converse":
            self._finish_record(record, outcome, outcome.output_tokens, True)
            self._send_json(handler, request_id, 200, shapes.converse_body(outcome))
        else:
            self._send_stream(handler, record, family, outcome, fault, slow)

    def _count_tokens(self, handler, request_id: str, model_id: str, raw: bytes) -> None:
        """CountTokens: the input tokens an InvokeModel (Anthropic) or Converse request
        would be counted, as the answer to it would report them (free: not recorded)."""
        if models.family_of(models.foundation_model(model_id)) != models.ANTHROPIC:
            message = "The provided model doesn't support counting tokens."
            self._send_error(handler, request_id, "ValidationException", 400, message)
            return
        try:
            source = json.loads(raw or b"null")["input"]
            if "invokeModel" in source:
                body = json.loads(base64.b64decode(source["invokeModel"]["body"]))
                prompt = models.parse_anthropic(body)
            else:
                prompt = models.parse_messages_v1(source["converse"], None)
        except (ValueError, KeyError, TypeError, models.BadRequest) as exc:
            message = f"Malformed input: {str(exc)[:200]}"
            self._send_error(handler, request_id, "ValidationException", 400, message)
            return
        tokens = models.prompt_tokens(prompt)
        self._send_json(handler, request_id, 200, {"inputTokens": tokens})

    def _outcome(self, api, foundation, family, raw: bytes, prompt, slow=False) -> models.Outcome:
        key = hashlib.sha256(f"{self.seed}|{api}|{foundation}|".encode() + raw).hexdigest()
        with self._lock:
            self._seen[key] += 1
            repeat = self._seen[key]
            cache_hit = None
            if prompt.cached_prefix and family in (models.ANTHROPIC, models.NOVA):
                cache_key = hashlib.sha256(f"{foundation}|{prompt.cached_prefix}".encode())
                cache_hit = cache_key.hexdigest() in self._cache
                self._cache.add(cache_key.hexdigest())
        rng = random.Random(int(key, 16) + repeat)
        fixed_output = self.fixed_output_tokens
        if slow:  # enough words for SLOW_STREAM_EVENTS events, if max_tokens allows
            fixed_output = max(fixed_output or 0, SLOW_STREAM_EVENTS)
        return models.make_outcome(
            prompt,
            rng,
            cache_hit=cache_hit,
            fixed_input=self.fixed_input_tokens,
            fixed_output=fixed_output,
        )

    def _finish_record(self, record: dict, out: models.Outcome, output: int, metrics: bool):
        # Recorded before the last byte goes out: a test reading the record right after
        # its client returns must find it.
        record.update(
            input_tokens=out.input_tokens,
            output_tokens=output,
            output_text=" ".join(out.words[:output]),
            # By the fake's own tokenizer (a word a token): what the client actually got.
            delivered_output_tokens=output,
            cache_read_input_tokens=out.cache_read_input_tokens,
            cache_write_input_tokens=out.cache_write_input_tokens,
            cache_write_1h_input_tokens=out.cache_write_1h_input_tokens,
            service_tier=out.service_tier,
            metrics_reported=metrics,
        )
        self._record(record)

    def _record(self, record: dict) -> None:
        with self._lock:
            self.calls.append(record)
            self.usage_by_request_id[record["request_id"]] = record
        if record["status"] == 200 and self.invocation_log is not None:
            self.invocation_log(record, record.get("request_metadata"))

    def _fail(self, handler, record: dict, code: str, status: int, message: str) -> None:
        record.update(status=status, error=code)
        self._record(record)
        self._send_error(handler, record["request_id"], code, status, message)

    # -- wire ------------------------------------------------------------------------

    def _send_error(self, handler, request_id: str, code: str, status: int, message: str):
        self._send_json(
            handler,
            request_id,
            status,
            {"message": message},
            {"x-amzn-ErrorType": code + _ERROR_TYPE_SUFFIX},
        )

    def _send_json(self, handler, request_id, status, body, extra_headers=None) -> None:
        handler.send_json(status, body, {"x-amzn-RequestId": request_id, **(extra_headers or {})})

    def _send_invoke(self, handler, record, family, out: models.Outcome) -> None:
        headers = {
            "X-Amzn-Bedrock-Invocation-Latency": str(out.latency_ms),
            "X-Amzn-Bedrock-Input-Token-Count": str(out.input_tokens),
            "X-Amzn-Bedrock-Output-Token-Count": str(out.output_tokens),
        }
        if out.cache_read_input_tokens or out.cache_write_input_tokens:
            headers["X-Amzn-Bedrock-Cache-Read-Input-Token-Count"] = str(
                out.cache_read_input_tokens
            )
            headers["X-Amzn-Bedrock-Cache-Write-Input-Token-Count"] = str(
                out.cache_write_input_tokens
            )
        if out.service_tier:
            headers["X-Amzn-Bedrock-Service-Tier"] = out.service_tier
        body = shapes.invoke_body(family, record["foundation_model"], _message_id(), out)
        self._finish_record(record, out, out.output_tokens, True)
        self._send_json(handler, record["request_id"], 200, body, headers)

    def _send_stream(self, handler, record, family, out, fault: Fault | None, slow=False):
        converse = record["api"] == "ConverseStream"
        per_piece = 1 if slow else 3  # a slow stream sends one word per event
        if converse:
            stream = shapes.converse_stream(out, per_piece)
        else:
            stream = shapes.invoke_stream(
                family, record["foundation_model"], _message_id(), out, per_piece
            )
        deltas, tail, exception = stream.deltas, stream.tail, None
        if fault is not None:
            # Cut after half the text, at least one delta, so a client sees some output.
            deltas = deltas[: max(1, len(deltas) // 2)]
            tail = []
            if fault.kind == "stream_exception":
                message = fault.message or "The model stream was interrupted."
                extra = {"originalStatusCode": 500, "originalMessage": message}
                if fault.exception_type != "modelStreamErrorException":
                    extra = {}
                exception = eventstream.encode_exception(fault.exception_type, message, **extra)
                record.update(status=200, error=fault.exception_type)
        sent = sum(n for _, n in deltas)
        self._finish_record(record, out, sent, bool(tail))

        def frame(chunk: dict) -> bytes:
            if converse:
                ((event_type, payload),) = chunk.items()
                body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
                return eventstream.encode_event(event_type, body)
            return eventstream.encode_chunk(chunk)

        head = [frame(c) for c in stream.head]
        frames = head + [frame(c) for c, _ in deltas]
        frames += [frame(c) for c in tail] + ([exception] if exception else [])
        paced = range(len(head), len(head) + len(deltas)) if slow else range(0)
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", eventstream.CONTENT_TYPE)
            handler.send_header("Transfer-Encoding", "chunked")
            handler.send_header("x-amzn-RequestId", record["request_id"])
            if not converse:
                handler.send_header("X-Amzn-Bedrock-Content-Type", "application/json")
            if out.service_tier:
                handler.send_header("X-Amzn-Bedrock-Service-Tier", out.service_tier)
            handler.end_headers()
            # One HTTP chunk per event, flushed, so clients decode as the events arrive.
            for n, data in enumerate(frames):
                if n in paced:
                    time.sleep(self.slow_stream_interval)
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                handler.wfile.flush()
            handler.wfile.write(b"0\r\n\r\n")
            handler.wfile.flush()
        except OSError:
            handler.close_connection = True


SERVICE_TIERS = ("default", "priority", "flex", "reserved")  # botocore's ServiceTierType


def _requested_tier(handler, body: dict, api: str) -> str | None:
    """The tier a request asked for: Converse's ``serviceTier.type``, InvokeModel's
    ``X-Amzn-Bedrock-Service-Tier`` header; Bedrock reports the one it served (here, the
    one asked for). None when none was asked (the fake then reports none)."""
    if api.startswith("Converse"):
        wanted = body.get("serviceTier")
        tier = wanted.get("type") if isinstance(wanted, dict) else None
    else:
        tier = handler.headers.get("X-Amzn-Bedrock-Service-Tier")
    return tier if tier in SERVICE_TIERS else None


def _request_metadata(api: str, headers, body: dict) -> dict | None:
    """The call's request metadata: the ``X-Amzn-Bedrock-Request-Metadata`` header of
    InvokeModel*, the ``requestMetadata`` member of a Converse* body (a JSON object of
    strings either way, else Bedrock's ValidationException)."""
    if api.startswith("Converse"):
        value = body.get("requestMetadata")
    else:
        raw = headers.get("X-Amzn-Bedrock-Request-Metadata")
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            raise models.BadRequest("requestMetadata is not a JSON object") from None
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise models.BadRequest("requestMetadata must map strings to strings")
    return value


def _message_id() -> str:
    return "msg_bdrk_" + uuid.uuid4().hex[:24]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bedrock_billing.fakebedrock",
        description="Run the fake Bedrock Runtime endpoint on loopback until interrupted.",
    )
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tls-dir",
        help="serve HTTPS with a certificate made into this folder (its ca.pem for clients)",
    )
    args = parser.parse_args(argv)
    tls = None
    if args.tls_dir:
        from bedrock_billing.localhttp.tls import make_tls_files

        tls = make_tls_files(args.tls_dir)
    # Explicit handlers: a process started from a background job inherits SIGINT as
    # ignored, and Python then raises no KeyboardInterrupt, so Ctrl-C/kill -INT did nothing.
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    fake = FakeBedrock(args.port, host=args.host, seed=args.seed, tls=tls).start()
    print(f"fake Bedrock Runtime at {fake.url}", flush=True)
    print(f"  export AWS_ENDPOINT_URL_BEDROCK_RUNTIME={fake.url}", flush=True)
    if tls is not None:
        print(f"  export AWS_CA_BUNDLE={tls.ca_bundle}", flush=True)
    try:
        while not stop.wait(0.5):  # a timed wait lets the signal handlers run
            pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
