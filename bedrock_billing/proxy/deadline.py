"""The request's deadline: when the proxy stops waiting for Bedrock, so that the outcome is
recorded (usage counters, log line) before anything else cuts the request.

A request has until the first of:

- Lambda's timeout: ``context.get_remaining_time_in_millis()`` when the request starts;
- the API Gateway integration timeout (``BEDROCK_BILLING_INTEGRATION_TIMEOUT``), from the
  request's start. Without a Lambda context (the local server) this is the only bound.

The deadline is that instant less a margin (``BEDROCK_BILLING_DEADLINE_MARGIN``, at most a
third of the budget) in which the proxy records the outcome. Bedrock's connect and read
timeouts are derived from the same budget (``client_timeouts``); botocore's read timeout is
per socket read, so it does not bound a stream: the stream loop checks ``expired()`` after
every event and bounds each further read of the socket by ``remaining()``
(``bound_reads``). docs/proxy.md has the table of every timeout and what happens at each.
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import ProxyError

CONNECT_TIMEOUT = 5.0  # seconds to open a connection to Bedrock, at most
DEADLINE_CODE = "deadline_exceeded"
DEADLINE_MESSAGE = "the request ran out of time before the model finished"


def deadline_error() -> ProxyError:
    """The client's timeout error (504; Bedrock's own ``ModelTimeoutException`` on the
    Bedrock Runtime routes), for a request stopped at its deadline."""
    return ProxyError(
        504,
        DEADLINE_CODE,
        DEADLINE_MESSAGE,
        billable_error=True,
        aws_code="ModelTimeoutException",
        aws_status=408,
        undelivered=True,
    )


def margin_for(budget: float, margin: float) -> float:
    """The time kept for recording: the configured margin, at most a third of the budget."""
    return min(margin, budget / 3)


def budget_seconds(context, integration_timeout: float) -> float:
    """The seconds this request may run: the integration timeout, or less when Lambda has
    less time left."""
    budget = integration_timeout
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        try:
            budget = min(budget, max(0, int(remaining())) / 1000)
        except (TypeError, ValueError):
            pass  # a context without a usable figure: the configured bound holds
    return budget


class Deadline:
    """An instant on the proxy's monotonic ``timer``."""

    def __init__(
        self, at: float, timer: Callable[[], float], read_timeout: float | None = None
    ):
        self.at = at
        self.timer = timer
        self.read_timeout = read_timeout  # the longest one socket read may wait, if less
        self.gateway_cutoff: float | None = None  # when API Gateway answers 504 itself

    @classmethod
    def for_request(cls, context, config, timer: Callable[[], float], started: float):
        budget = budget_seconds(context, config.integration_timeout)
        at = started + budget - margin_for(budget, config.deadline_margin)
        deadline = cls(at, timer, config.bedrock_read_timeout)
        deadline.gateway_cutoff = started + config.integration_timeout
        return deadline

    def integration_timed_out(self) -> bool:
        """True once API Gateway's integration timeout has passed: the client then has
        API Gateway's own 504, whatever the proxy sends."""
        return self.gateway_cutoff is not None and self.timer() >= self.gateway_cutoff

    def remaining(self) -> float:
        return max(0.0, self.at - self.timer())

    def expired(self) -> bool:
        return self.timer() >= self.at

    def check(self) -> None:
        if self.expired():
            raise deadline_error()


def client_timeouts(integration_timeout: float, margin: float, read_timeout: float):
    """(connect, read) timeouts for the Bedrock client, built once per container: no single
    wait may outlast the longest a request can have (the budget less the margin)."""
    longest = max(1.0, integration_timeout - margin_for(integration_timeout, margin))
    return min(CONNECT_TIMEOUT, longest), min(read_timeout, longest)


def _socket_of(body):
    """The socket under botocore's event stream (urllib3's response), or None."""
    raw = getattr(body, "_raw_stream", None)
    connection = getattr(raw, "connection", None) or getattr(raw, "_connection", None)
    return getattr(connection, "sock", None)


def bound_reads(body, deadline: Deadline | None) -> None:
    """Make the next socket read of a stream wait no longer than the deadline allows.

    Best effort: a stand-in stream (tests) has no socket, and then the check between
    events is the bound."""
    if deadline is None:
        return
    sock = _socket_of(body)
    if sock is None:
        return
    wait = deadline.remaining()
    if deadline.read_timeout is not None:
        wait = min(wait, deadline.read_timeout)
    try:
        sock.settimeout(max(0.001, wait))
    except OSError:
        pass
