"""The Lambda entry point and the :class:`Proxy` that serves one request.

``lambda_handler(event, context)`` serves API Gateway REST events (payload 1.0) and
Function URL / HTTP API events (payload 2.0) with one lazily built :class:`Proxy` per
container. Tests and the local server build their own ``Proxy`` with injected clients,
clock and log sink.

A request goes: event -> route -> Bearer token -> JSON body and ``modelId`` -> token
lookup (cached) -> admission (one conditional UpdateItem, DynamoDB decides) -> Bedrock ->
usage write (one transaction) -> response; and, whatever happened, one log line.

This module imports boto3 and the pure core only, so the Lambda zip and its cold start
stay small (a test checks that Typer, Rich, pyathena, DuckDB, moto and the CLI stay out).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from ..core.errors import InvalidInput
from ..core.models import normalise_model_id
from ..core.timeutil import Clock, system_clock
from . import bedrock
from .auth import Authenticator
from .config import ProxyConfig
from .errors import ProxyError, bad_request
from .events import (
    CONVERSE,
    bearer_token,
    cors_headers,
    error_response,
    json_response,
    parse_event,
    preflight,
    read_json_body,
    route,
)
from .logline import RequestLog, print_sink, write_failure_metric
from .meter import CounterWriteFailed, Meter

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
        sleep: Callable[[float], None] = time.sleep,
        timer: Callable[[], float] = time.perf_counter,
    ):
        self.config = config or ProxyConfig.from_env()
        self.clock = clock
        self.log_sink = log_sink
        self.metric_sink = metric_sink or log_sink
        self.timer = timer
        self._dynamodb = dynamodb
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
        self.meter = Meter(self.dynamodb, c.tables.usage, sleep)

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
        return self._dynamodb

    def bedrock(self):
        if self._bedrock is None:
            with self._lock:
                if self._bedrock is None:
                    # No retries: a retried generation may be billed twice by Bedrock, and
                    # the client is better placed to decide (429/503 carry Retry-After).
                    from botocore.config import Config

                    self._bedrock = boto3.client(
                        "bedrock-runtime",
                        region_name=self.config.region,
                        config=Config(
                            retries={"total_max_attempts": 1},
                            connect_timeout=5,
                            read_timeout=self.config.bedrock_read_timeout,
                            max_pool_connections=64,
                        ),
                    )
        return self._bedrock

    # ---- serving

    def handle(self, event, context=None, on_chunk: bedrock.ChunkSink | None = None) -> dict:
        """Serve one event; never raises. ``on_chunk`` receives stream chunks as they come
        (the local server's SSE); the Lambda response always holds the whole answer."""
        started = self.timer()
        log = RequestLog(timestamp=self.clock())
        cors: dict[str, str] = {}
        try:
            request = parse_event(event)
            log.request_id = request.request_id
            cors = cors_headers(request.origin, self.config.cors_origins)
            if request.method == "OPTIONS":
                return preflight(request.origin, self.config.cors_origins)  # not a request
            response = self._serve(request, log, cors, on_chunk)
        except ProxyError as err:
            response = self._refuse(err, log, cors)
        except (ClientError, BotoCoreError):
            # DynamoDB failed during lookup or admission: nothing was served or billed.
            err = ProxyError(
                503, "service_unavailable", "the service is unavailable; retry", retry_after=1
            )
            response = self._refuse(err, log, cors)
        except Exception:
            err = ProxyError(500, "internal_error", "internal error")
            response = self._refuse(err, log, cors)
        log.duration_ms = int((self.timer() - started) * 1000)
        timeout_ms = self.config.integration_timeout * 1000
        log.near_timeout = log.duration_ms >= timeout_ms * self.config.near_timeout_fraction
        self._emit(self.log_sink, log.line())
        return response

    def _refuse(self, err: ProxyError, log: RequestLog, cors: dict) -> dict:
        log.status, log.error_code = err.status, err.code
        request_id = log.request_id or "unknown"
        return error_response(err, request_id, {**cors, "X-Request-Id": request_id})

    def _serve(self, request, log: RequestLog, cors: dict, on_chunk) -> dict:
        if request.method != "POST":
            raise ProxyError(405, "method_not_allowed", "use POST")
        api = route(request.path)
        if api is None:
            raise ProxyError(404, "not_found", "no such route: use POST /bedrock")
        log.api = api
        token = bearer_token(request.headers)
        body = read_json_body(request, self.config.max_body_bytes)
        model_id = body.pop("modelId", None)
        if model_id is None:
            raise bad_request("missing_model_id", "modelId is required")
        try:
            model = normalise_model_id(model_id)
        except InvalidInput as exc:
            raise bad_request("invalid_model_id", exc.message) from None
        log.model_id, log.foundation_model = model.model_id, model.foundation_model
        stream = body.pop("stream", False)
        if not isinstance(stream, bool):
            raise bad_request("invalid_stream", "stream must be true or false")
        log.streamed = stream

        customer = self.auth.authenticate(token)
        log.customer_id = customer.customer_id
        price = self.config.prices.get(model.foundation_model) if self.config.prices else None
        try:
            admission = self.meter.admit(customer, model, price, log.timestamp)
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

        try:
            result = self._call(api, model.model_id, body, stream, on_chunk)
        except Exception as exc:
            log.usage = getattr(exc, "partial_usage", None)
            self._write(lambda: self.meter.record_error(admission), log)
            raise (exc if isinstance(exc, ProxyError) else bedrock.map_error(exc)) from None
        log.status = 200
        log.usage = result.usage
        log.bedrock_request_id, log.service_tier = result.bedrock_request_id, result.service_tier
        self._write(lambda: self.meter.record_success(admission, result.usage), log)

        headers = {**cors, "X-Request-Id": log.request_id, **result.headers}
        if stream:
            return json_response(200, json.dumps(result.chunks + [{"done": True}]), headers)
        response = json_response(200, result.body, headers)
        response["headers"]["Content-Type"] = result.content_type
        response["isBase64Encoded"] = result.body_is_base64
        return response

    def _call(self, api: str, model_id: str, body: dict, stream: bool, on_chunk):
        client = self.bedrock()
        if api == CONVERSE:
            if stream:
                return bedrock.converse_stream(client, model_id, body, on_chunk)
            return bedrock.converse(client, model_id, body)
        if stream:
            return bedrock.invoke_stream(client, model_id, body, on_chunk)
        return bedrock.invoke(client, model_id, body)

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
