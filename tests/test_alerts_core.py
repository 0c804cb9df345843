"""Thresholds, crossings, signatures, the URL policy and the delivery loop, in process."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bedrock_billing.core import alerts, webhooks
from bedrock_billing.core.errors import InvalidInput
from bedrock_billing.notifier import delivery
from tests.webhook_support import documented_verifier

LIMITS = {
    alerts.DAILY_REQUESTS: 10,
    alerts.MONTHLY_TOKENS: 1000,
    alerts.MONTHLY_BUDGET: Decimal("2.00"),
}


def crossed(old, new, thresholds=(50, 80, 100), limits=LIMITS):
    found = alerts.crossings("METER#2026-12", old, new, limits, thresholds)
    return [(c.metric, c.pct, c.window) for c in found]


def test_each_threshold_is_crossed_by_exactly_one_increment():
    seen = []
    for n in range(12):
        seen += crossed({"d03": n}, {"d03": n + 1})
    assert seen == [
        ("daily_request_limit", 50, "2026-12-03"),
        ("daily_request_limit", 80, "2026-12-03"),
        ("daily_request_limit", 100, "2026-12-03"),
    ]


def test_a_jump_crosses_every_threshold_it_passes_and_a_decrease_none():
    assert [p for _, p, _ in crossed({"tokens": 100}, {"tokens": 900})] == [50, 80]
    assert crossed({"d03": 9}, {"d03": 8}) == []  # an admission given back
    assert crossed({"d03": 5}, {"d03": 5, "tokens": 10}) == []


def test_budget_is_compared_in_pico_units_and_reported_in_currency():
    pico = 10**12
    [c] = alerts.crossings(
        "METER#2026-12", {"spend": pico}, {"spend": int(1.7 * pico)}, LIMITS, (80,)
    )
    assert (c.metric, c.value, c.limit) == ("monthly_budget", Decimal("1.7"), Decimal("2.00"))


def test_unlimited_and_other_items_are_not_watched():
    assert crossed({}, {"d01": 100}, limits={alerts.DAILY_REQUESTS: None}) == []
    assert alerts.crossings("DAY#2026-12-01#m", {}, {"d01": 100}, LIMITS, (50,)) == []


def test_the_stream_filter_keeps_only_meter_changes():
    def record(name, sk):
        return {"eventName": name, "dynamodb": {"Keys": {"sk": {"S": sk}}}}

    assert alerts.stream_filter_matches(record("MODIFY", "METER#2026-12"))
    assert alerts.stream_filter_matches(record("INSERT", "METER#2026-12"))
    assert not alerts.stream_filter_matches(record("REMOVE", "METER#2026-12"))  # TTL
    for sk in ("DAY#2026-12-01#m", "MIN#2026-12-01T10:00", "ALERT#x", "EVENT#evt_1"):
        assert not alerts.stream_filter_matches(record("MODIFY", sk))
    pattern = alerts.STREAM_FILTER
    assert pattern["dynamodb"]["Keys"]["sk"]["S"] == [{"prefix": "METER#"}]


@pytest.mark.parametrize("values", [["0"], ["101"], ["x"], [], ["-5"]])
def test_bad_thresholds_are_refused(values):
    with pytest.raises(InvalidInput):
        alerts.parse_thresholds(values)


def test_events_have_the_documented_keys():
    now = datetime(2026, 12, 3, 10, tzinfo=UTC)
    event = alerts.make_event(alerts.TOKEN_EXPIRING, "c1", {"prefix": "bbk_ab"}, now)
    assert set(event) == {"id", "type", "created", "customer_id", "data"}
    assert event["id"].startswith("evt_") and event["created"] == 1796292000
    with pytest.raises(InvalidInput):
        alerts.make_event("nope", "c1", {}, now)


def test_signature_follows_stripes_scheme_and_the_documented_verifier_checks_it():
    import hashlib
    import hmac
    import time

    body, secret, t = b'{"id":"evt_1"}', "whsec_abc", int(time.time())
    header = webhooks.sign(secret, t, body)
    expected = hmac.new(b"whsec_abc", f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    assert header == f"t={t},v1={expected}"
    verify = documented_verifier()
    assert verify(secret, header, body)
    assert not verify(secret, webhooks.sign(secret, t - 301, body), body)  # too old
    assert not verify(secret, "v1=" + expected, body)
    assert not verify(secret, f"t=abc,v1={expected}", body)
    assert webhooks.verify(secret, header, body, t)


def test_private_names_are_refused_at_delivery_after_resolving(monkeypatch):
    """A public-looking name that resolves (or rebinds) to a private address is refused,
    and the connection would go to the checked address only."""
    answers = {"hooks.example.com": "10.0.0.7"}

    def fake_getaddrinfo(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(delivery.Refused):
        delivery.resolve_checked("hooks.example.com", 443, allow_private=False)
    assert delivery.resolve_checked("hooks.example.com", 443, allow_private=True) == "10.0.0.7"
    answers["hooks.example.com"] = "93.184.215.14"
    assert delivery.resolve_checked("hooks.example.com", 443, False) == "93.184.215.14"
    outcome = delivery.deliver(
        "https://hooks.example.com/x",
        b"{}",
        dict,
        post=lambda *a: (_ for _ in ()).throw(delivery.Refused("private")),
        sleep=lambda s: pytest.fail("a refused address is not retried"),
    )
    assert not outcome.delivered and outcome.attempts == 1


def test_delivery_retries_5xx_and_timeouts_not_4xx():
    answers = iter([503, TimeoutError("timed out"), 500, 200])
    waits = []

    def post(*args):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    out = delivery.deliver("https://h.example/x", b"{}", dict, post=post, sleep=waits.append)
    assert (out.delivered, out.attempts, waits) == (True, 4, [1.0, 2.0, 4.0])
    out = delivery.deliver(
        "https://h.example/x", b"{}", dict, post=lambda *a: 404, sleep=waits.append
    )
    assert (out.delivered, out.attempts, out.last_status) == (False, 1, 404)
    waits.clear()
    out = delivery.deliver(
        "https://h.example/x", b"{}", dict, post=lambda *a: 502, sleep=waits.append
    )
    assert (out.attempts, sum(waits)) == (webhooks.MAX_ATTEMPTS, 15.0)  # bounded
