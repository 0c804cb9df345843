"""The Lambda entry point and the :class:`Proxy` that serves one request.

``lambda_handler(event, context)`` serves API Gateway REST events (payload 1.0) and
Function URL / HTTP API events (payload 2.0) with one lazily built :class:`Proxy` per
container. Tests and the local server build their own ``Proxy`` with injected clients,
clock and log sink.

A request goes: event -> route (``proxy/apis``: which wire API) -> the adapter parses it
into one internal call -> Bearer token -> model id -> token lookup (cached) -> admission
(one conditional UpdateItem, DynamoDB decides) -> Bedrock -> usage write (one transaction)
-> the adapter renders the answer, the stream or the refusal; and, whatever happened, one
log line. Every wire API shares this one pipeline.

This module imports boto3 and the pure core only, so the Lambda zip and its cold start
stay small (a test checks that Typer, Rich, pyathena, DuckDB, moto and the CLI stay out).
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable
from typing import Protocol

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from ..core.errors import InvalidInput
from ..core.logschema import INVALID_MODEL, SECURITY_EVENT_CODES
from ..core.models import normalise_model_id, route_through_profile
from ..core.timeutil import Clock, system_clock
from . import apis, bedrock, parameters
from .apis.base import Adapter
from .apis.bedrock_runtime import inference_profiles, ping
from .auth import Authenticator
from .call import COUNT_TOKENS, Call, StreamEvent
from .config import ProxyConfig
from .deadline import Deadline, client_timeouts
from .errors import ProxyError, bad_request
from .events import cors_headers, hold_origin, parse_event, preflight
from .logline import RequestLog, print_sink, request_metrics, write_failure_metric
from .metadata import proxy_tags
from .meter import CounterWriteFailed, Meter, guard_writes
from .security import SecurityCounter
from .testkeys import TestResponder
from .usage import estimate

LogSink = Callable[[dict], None]


class Proxy:
    """Config, clients, clock, caches and log sink for serving requests; thread-safe."""

    def __init__(
        self,
        config: ProxyConfig | None = None,
        *,
        dynamodb=None,
        bedrock_runtime=None,
        clock: Clock = system_clock,
        log_sink: LogSink = print_sink,
        metric_sink: LogSink | None = None,
        admission_sink: LogSink | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timer: Callable[[], float] = time.perf_counter,
    ):
        self.config = config or ProxyConfig.from_env()
        self.clock = clock
        self.log_sink = log_sink
        self.metric_sink = metric_sink or log_sink
        # The admission line goes the log line's way unless a caller separates them (tests).
        self.admission_sink = admission_sink or log_sink
        self.timer = timer
        self._dynamodb = dynamodb
        if dynamodb is not None:
            guard_writes(dynamodb)
        self._bedrock = bedrock_runtime
        self._lock = threading.Lock()
        c = self.config
        self.auth = Authenticator(
            self.dynamodb,
            c.tables,
            clock,
            c.auth_cache_ttl,
            c.negative_cache_ttl,
            c.auth_cache_size,
        )
        self.meter = Meter(self.dynamodb, c.tables.usage, sleep, c.test_key_requests_per_minute)
        self.test_responder = TestResponder()  # answers test keys: never Bedrock
        self.security = SecurityCounter()
        self._account = None  # the portal's reader, built on its first request

    # ---- clients: built on first use, kept for the container's life

    def dynamodb(self):
        if self._dynamodb is None:
            with self._lock:
                if self._dynamodb is None:
                    from botocore.config import Config  # with the client: keeps imports lean

                    self._dynamodb = boto3.client(
                        "dynamodb",
                        region_name=self.config.region,
                        config=Config(
                            retries={"mode": "standard", "max_attempts": 3},
                            connect_timeout=2,
                            read_timeout=5,
                            max_pool_connections=64,
                        ),
                    )
                    guard_writes(self._dynamodb)  # no blind repeat of an ADD (meter.py)
        return self._dynamodb

    def bedrock(self):
        if self._bedrock is None:
            with self._lock:
                if self._bedrock is None:
                    # No retries: a retried generation may be billed twice by Bedrock, and
                    # the client is better placed to decide (429/503 carry Retry-After).
                    from botocore.config import Config

                    c = self.config  # no single wait outlasts a request's deadline
                    connect, read = client_timeouts(
                        c.integration_timeout, c.deadline_margin, c.bedrock_read_timeout
                    )
                    # SigV4 with the function's role, always: an AWS_BEARER_TOKEN_BEDROCK
                    # in the proxy's environment (a sandbox started from a shell that set
                    # it for a client) must not switch the proxy to a Bedrock API key.
                    self._bedrock = boto3.client(
                        "bedrock-runtime",
                        region_name=self.config.region,
                        config=Config(
                            signature_version="v4",
                            retries={"total_max_attempts": 1},
                            connect_timeout=connect,
                            read_timeout=read,
                            max_pool_connections=64,
                        ),
                    )
        return self._bedrock

    def account_reader(self):
        """The customer portal's reads of the caller's own items (proxy/account.py)."""
        if self._account is None:
            from .account import AccountReader

            currency = self.config.prices.currency if self.config.prices else "USD"
            self._account = AccountReader(self.dynamodb, self.config.tables, currency)
        return self._account

    # ---- serving

    def handle(self, event, context=None, stream: StreamWriter | None = None) -> dict:
        """Serve one event; never raises.

        ``stream`` (the local server, a streaming deployment) receives a streamed answer as
        it comes: ``start(status, headers)`` once, then ``write(bytes)`` per event in the wire
        format; the returned dict is then not the answer. Without it, or when no stream
        started, the returned API Gateway answer holds the whole response."""
        started = self.timer()
        deadline = Deadline.for_request(context, self.config, self.timer, started)
        log = RequestLog(timestamp=self.clock())
        cors: dict[str, str] = {}
        adapter: Adapter | None = None
        try:
            request = parse_event(event)
            log.request_id, log.source_ip = request.request_id, request.source_ip
            adapter = apis.adapter_for_path(request.path)
            cors = cors_headers(request.origin, self.config.cors_origins)
            if request.method == "OPTIONS":
                return preflight(  # not a request: it carries no token
                    request.origin, self.config.cors_origins, self.config.cors_per_customer
                )
            route, params = apis.match(request.method, request.path)
            adapter = route.adapter
            log.wire_api = adapter.name
            if route.local:
                return self._local(route, request, params, cors)
            response = self._serve(adapter, request, params, log, cors, stream, deadline)
        except ProxyError as err:
            response = self._refuse(adapter, err, log, cors)
        except (ClientError, BotoCoreError):
            # DynamoDB failed during lookup or admission: nothing was served or billed.
            err = ProxyError(
                503, "service_unavailable", "the service is unavailable; retry", retry_after=1
            )
            response = self._refuse(adapter, err, log, cors)
        except Exception:
            err = ProxyError(500, "internal_error", "internal error")
            response = self._refuse(adapter, err, log, cors)
        log.duration_ms = int((self.timer() - started) * 1000)
        # Close to the time the request was allowed (its deadline, proxy/deadline.py).
        allowed_ms = (deadline.at - started) * 1000
        log.near_timeout = log.duration_ms >= allowed_ms * self.config.near_timeout_fraction
        if log.api != COUNT_TOKENS:  # free calls are not usage (docs/proxy.md)
            self._emit(self.log_sink, log.line())
        if self.config.request_metrics:
            self._emit(self.metric_sink, request_metrics(log, self.config.customer_metrics))
        return response

    def _refuse(self, adapter: Adapter | None, err: ProxyError, log: RequestLog, cors) -> dict:
        log.status, log.error_code = err.status, err.code
        if err.code in SECURITY_EVENT_CODES:  # counted per address here, no DynamoDB write
            log.security_events = self.security.count(log.source_ip, log.timestamp)
        request_id = log.request_id or "unknown"
        adapter = adapter or apis.INVOKE_API
        return adapter.refuse(err, request_id, {**cors, "X-Request-Id": request_id})

    def _local(self, route, request, params, cors: dict) -> dict:
        """Answers the proxy gives itself: the health check, the inference-profile and model
        lists, and the customer portal (never metered, no usage log line)."""
        headers = {**cors, "X-Request-Id": request.request_id}
        if route.local == apis.PING:
            return ping(request.request_id, headers)
        if route.local in apis.PORTAL_MARKERS:
            from .apis import portal  # on first use: a lean cold start

            return portal.serve(self, route.local, request, params, headers)
        customer = self.auth.authenticate(route.adapter.token(request), request.source_ip)
        hold_origin(request.origin, customer.allowed_origins, cors)
        headers = {**cors, "X-Request-Id": request.request_id}
        models = customer.allowed_models
        if models is None:
            models = sorted(self.config.prices.models) if self.config.prices else []
        if route.local == apis.LIST_MODELS:
            from .apis.models_list import model_list  # on first use: a lean cold start

            return model_list(list(models), self.config.model_names, request.request_id, headers)
        return inference_profiles(list(models), self.config.region, request.request_id, headers)

    def _serve(
        self, adapter: Adapter, request, params, log: RequestLog, cors, stream, deadline
    ) -> dict:
        token = adapter.token(request)
        call = adapter.parse(request, params, self.config.max_body_bytes)
        log.api, log.streamed = call.operation, call.stream
        try:
            if isinstance(call.model_id, str) and hmac.compare_digest(
                call.model_id.encode(), token.encode()
            ):
                raise InvalidInput("modelId is not a valid Bedrock model id")
            # Anthropic's model names (and the operator's own) to Bedrock ids: core/model_names
            model = normalise_model_id(self.config.model_names.resolve(call.model_id))
        except InvalidInput as exc:
            log.model_id = INVALID_MODEL
            raise bad_request("invalid_model_id", exc.message) from None
        log.model_id, log.foundation_model = call.model_id, model.foundation_model
        customer = self.auth.authenticate(token, request.source_ip)  # key, allowlist
        log.customer_id, log.key_id, log.test = customer.customer_id, customer.key_id, customer.test
        hold_origin(request.origin, customer.allowed_origins, cors)
        # The customer's application inference profile, if it has one for this model.
        model, target = route_through_profile(customer.inference_profiles, model)
        log.foundation_model = model.foundation_model
        client = self.bedrock()
        # CountTokens takes the foundation model's id, never an inference profile's.
        bedrock_id = model.foundation_model if call.operation == COUNT_TOKENS else target
        # Tagged with the customer and this request (invocation logs: docs/reconcile.md).
        tags = proxy_tags(customer.customer_id, log.request_id, self.config.tables.usage)
        prepared = bedrock.prepare(client, call, bedrock_id, tags)  # a bad request costs nothing
        # The customer's defaults and max_tokens cap (before admission: a refusal is free).
        prepared = parameters.apply(
            call, prepared, model.foundation_model, customer.model_parameters
        )
        log.request_bytes = bedrock.request_size(call, prepared)
        log.max_tokens = bedrock.requested_max_tokens(call, prepared)
        deadline.check()  # no time left to serve and record it: refused, nothing billed
        if customer.test:  # a test key: the deterministic responder answers, never Bedrock
            client = self.test_responder
        if call.operation == COUNT_TOKENS:
            self.meter.admit_free(customer, log.timestamp)
            result = self._call(client, call, prepared, None, log)
            log.status = 200
            return adapter.render(call, result, {**cors, "X-Request-Id": log.request_id})
        price = self.config.prices.get(model.foundation_model) if self.config.prices else None
        try:
            admission = self.meter.admit(customer, model, price, log.timestamp, log.request_id)
        except ProxyError as err:
            if err.limit:
                self._write(
                    lambda: self.meter.record_refused(
                        customer.customer_id, model.foundation_model, log.timestamp
                    ),
                    log,
                )
            raise
        log.admitted = True
        # Before Bedrock is called: if nothing else is ever written for this request (the
        # function killed at its timeout), reconcile finds this line without an outcome.
        # A test key's answer is made in process and never billed: no line to pair.
        if not customer.test:
            self._emit(self.admission_sink, log.admission_line())
        headers = {**cors, "X-Request-Id": log.request_id, "x-amzn-RequestId": log.request_id}
        out = _StreamOut(adapter, call, stream, headers, log.request_id) if call.stream else None
        try:
            result = self._call(client, call, prepared, out, log, deadline)
        except ProxyError as err:
            if err.undelivered:  # Bedrock may have generated it: recorded, never dropped
                usage = log.usage or estimate(log.request_bytes or 0, 0)
                self._record_undelivered(admission, usage, log)
            else:
                self._write(lambda e=err: self.meter.record_error(admission, e), log)
            log.status, log.error_code = err.status, err.code
            if out is not None and out.events_seen:
                return out.fail(err)  # the answer began: the error goes in-band
            raise
        log.status = 200
        log.usage = result.usage
        log.bedrock_request_id, log.service_tier = result.bedrock_request_id, result.service_tier
        # The client left mid-stream, or API Gateway already answered it with its timeout.
        if (out is not None and out.client_gone) or deadline.integration_timed_out():
            self._record_undelivered(admission, result.usage, log)
        else:
            self._write(lambda: self.meter.record_success(admission, result.usage), log)
        if out is not None:
            answer = out.finish(result)
            log.undelivered = log.undelivered or out.client_gone
            return answer
        return adapter.render(call, result, headers)

    def _record_undelivered(self, admission, usage, log: RequestLog) -> None:
        """A generation the client did not receive in full: its tokens are recorded either
        way; charged (a usage write) or not (an error write, the daily slot given back) as
        ``charge_undelivered`` says (docs/proxy.md, "Undelivered generations")."""
        log.undelivered, log.usage = True, usage
        log.charged = self.config.charge_undelivered
        if log.charged:
            self._write(lambda: self.meter.record_success(admission, usage), log)
        else:
            log.error_code = log.error_code or "undelivered"
            self._write(lambda: self.meter.record_error(admission, None), log)

    def _call(self, client, call: Call, prepared: dict, out, log: RequestLog, deadline=None):
        """Bedrock's answer, or its error as a ProxyError (usage so far kept for the log)."""
        try:
            return bedrock.call_bedrock(client, call, prepared, out, deadline)
        except Exception as exc:
            log.usage = getattr(exc, "partial_usage", None)
            log.bedrock_request_id = bedrock.failed_request_id(exc)
            raise (exc if isinstance(exc, ProxyError) else bedrock.map_error(exc)) from None

    def _write(self, write: Callable[[], None], log: RequestLog) -> None:
        """A counter write; if it fails after retries, the log line keeps the usage and a
        metric is emitted, so nothing is silently lost."""
        try:
            write()
        except CounterWriteFailed:
            log.counter_write_failed = True
            self._emit(self.metric_sink, write_failure_metric(log))

    @staticmethod
    def _emit(sink: LogSink, record: dict) -> None:
        try:
            sink(record)
        except Exception:  # a broken sink must not turn an answer into an error
            pass


class StreamWriter(Protocol):
    def start(self, status: int, headers: dict[str, str]) -> None: ...

    def write(self, data: bytes) -> None: ...


class _StreamOut:
    """Where a stream's events go: to a live writer as they come (the status and headers
    with the first event), or gathered for Lambda's one-piece answer.

    A client that hangs up does not stop the generation: the writer's failure (an
    ``OSError`` from a socket, or a writer that reports ``broken``) marks the client gone,
    later events are dropped, and the pipeline keeps reading Bedrock's stream to its end,
    so the usage is metered from Bedrock's own final count (docs/proxy.md)."""

    def __init__(self, adapter: Adapter, call: Call, writer, headers: dict, request_id: str):
        self.adapter, self.call, self.writer = adapter, call, writer
        self.headers, self.request_id = headers, request_id
        self.events: list[StreamEvent] = []
        self.events_seen = False
        self.live = False
        self.client_gone = False

    def __call__(self, event: StreamEvent) -> None:
        self.events_seen = True
        if self.writer is None:
            self.events.append(event)
            return
        self._send(event)

    def _send(self, event: StreamEvent | None) -> None:
        """One event (``None``: the end) to the live writer, unless the client is gone.
        The writer is the client's transport: its failure is never Bedrock's."""
        if self.client_gone:
            return
        if event is None:
            data = self.adapter.encode_end(self.call)
        else:
            data = self.adapter.encode_event(self.call, event)
        try:
            if not self.live:
                self.live = True
                self.writer.start(200, self._headers())
            self.writer.write(data)
        except Exception:
            self.client_gone = True
            return
        if getattr(self.writer, "broken", False):
            self.client_gone = True

    def _headers(self) -> dict[str, str]:
        return {**self.headers, **self.adapter.stream_headers(self.call)}

    def finish(self, result) -> dict:
        if self.writer is not None:  # a stream with no event at all is still a stream
            self._send(None)
            return {"statusCode": 200, "headers": {}, "body": "", "isBase64Encoded": False}
        return self.adapter.buffered_stream(
            self.call, self.events, None, self.request_id, self._headers()
        )

    def fail(self, err: ProxyError) -> dict:
        if self.live:
            if not self.client_gone:
                try:
                    self.writer.write(self.adapter.encode_error(self.call, err, self.request_id))
                except Exception:
                    self.client_gone = True
            return {"statusCode": err.status, "headers": {}, "body": "", "isBase64Encoded": False}
        return self.adapter.buffered_stream(
            self.call, self.events, err, self.request_id, self._headers()
        )


_proxy: Proxy | None = None
_proxy_lock = threading.Lock()


def get_proxy() -> Proxy:
    global _proxy
    if _proxy is None:
        with _proxy_lock:
            if _proxy is None:
                _proxy = Proxy()
    return _proxy


def lambda_handler(event, context):
    return get_proxy().handle(event, context)
