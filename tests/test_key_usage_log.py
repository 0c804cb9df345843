"""Usage per key from the usage log (``--source athena``, DuckDB in the sandbox) agrees
with the KEY# counters, key by key, after real traffic through the proxy."""

from __future__ import annotations

import json
import urllib.request

from bedrock_billing.services.keys import create_key, key_usage
from tests.proxy_support import HAIKU, claude_body


def _call(box, token: str) -> None:
    request = urllib.request.Request(
        box.proxy_url,
        data=json.dumps({"modelId": HAIKU, **claude_body()}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200


def test_the_log_and_the_counters_give_the_same_rows_per_key(tls_sandbox, sandbox_customer):
    settings = tls_sandbox.settings()
    customer = sandbox_customer()
    cid = customer["customer_id"]
    ci = create_key(settings, cid, name="ci")
    for token, times in ((customer["token"], 2), (ci["token"], 3)):
        for _ in range(times):
            _call(tls_sandbox, token)
    tls_sandbox.log_sink.flush()

    counters = key_usage(settings, cid, clock=tls_sandbox.clock)
    log = key_usage(settings, cid, clock=tls_sandbox.clock, source="athena")
    assert (counters["source"], log["source"]) == ("dynamodb", "athena")
    by_key = {row["key_id"]: row for row in log["rows"]}
    assert by_key["default"]["requests"] == 2 and by_key[ci["key_id"]]["requests"] == 3
    assert by_key[ci["key_id"]]["key_name"] == "ci"
    assert by_key[ci["key_id"]]["input_tokens"] > 0
    for row in counters["rows"]:
        other = by_key[row["key_id"]]
        for name in ("requests", "input_tokens", "output_tokens", "errors", "test_requests"):
            assert other[name] == row[name], (row["key_id"], name)
    # The log counts every admitted outcome; the counters keep `admitted` for a key with
    # its own daily limit only (docs/schema.md).
    assert by_key["default"]["admitted"] == 2
