"""The AWS SDK for JavaScript v3 (``@aws-sdk/client-bedrock-runtime``), installed with npm,
against the fake Bedrock over TLS and against the sandbox's proxy over TLS: InvokeModel,
InvokeModelWithResponseStream, Converse and ConverseStream with the customer's token as the
Bedrock API key (``AWS_BEARER_TOKEN_BEDROCK``) and the sandbox's CA (``NODE_EXTRA_CA_CERTS``).

The SDK is installed once per version into ``~/.cache/bedrock-billing-npm/<version>`` (or
``$BEDROCK_BILLING_NPM_CACHE/<version>``) and reused, so only the first run pays for npm.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from bedrock_billing.fakebedrock import FakeBedrock
from bedrock_billing.localhttp.tls import make_tls_files
from tests.sandbox_support import log_lines, usage_totals

# 3.840.0 is the first version that sends AWS_BEARER_TOKEN_BEDROCK as a Bearer token.
SDK_PACKAGE = "@aws-sdk/client-bedrock-runtime"
SDK_VERSION = "3.1178.0"
SCRIPT = Path(__file__).parent / "js" / "bedrock_sdk_check.mjs"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
OPERATIONS = ("invoke", "invokeStream", "converse", "converseStream")
# Read at import, before the autouse fixture points HOME at a temporary folder.
_CACHE_ROOT = Path(
    os.environ.get("BEDROCK_BILLING_NPM_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bedrock-billing-npm"
)
_REAL_HOME = str(Path.home())


def _install(target: Path) -> None:
    """npm install into a fresh folder beside ``target``, then move it into place whole, so
    a concurrent worker or an interrupted run never sees half an install."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        (staging / "package.json").write_text('{"private": true}\n')
        done = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--no-save", "--loglevel=error",
             f"{SDK_PACKAGE}@{SDK_VERSION}"],
            cwd=staging, capture_output=True, text=True, timeout=300,
            env={**os.environ, "HOME": _REAL_HOME},  # npm's own cache survives the run
        )  # fmt: skip
        if done.returncode != 0:
            pytest.fail(f"npm install {SDK_PACKAGE}@{SDK_VERSION} failed:\n{done.stderr[-2000:]}")
        try:
            staging.rename(target)
        except OSError:  # another worker finished first: use its install
            if not (target / "node_modules").is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@pytest.fixture(scope="session")
def js_sdk() -> Path:
    """The ``node_modules`` folder holding the SDK (installed on first use)."""
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node and npm are not installed (.ci/run installs them with apt)")
    target = _CACHE_ROOT / SDK_VERSION
    if not (target / "node_modules" / SDK_PACKAGE / "package.json").is_file():
        _install(target)
    return target / "node_modules"


def run_sdk(js_sdk: Path, endpoint: str, ca_bundle: str, token: str, **env) -> dict:
    done = subprocess.run(
        ["node", str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/tmp"),
            "NODE_PATH": str(js_sdk),
            "ENDPOINT": endpoint,
            "NODE_EXTRA_CA_CERTS": ca_bundle,
            "AWS_BEARER_TOKEN_BEDROCK": token,
            "MODEL_ID": HAIKU,
            **env,
        },
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def text_of_invoke_stream(chunks: list[dict]) -> str:
    return "".join(c["delta"]["text"] for c in chunks if c.get("type") == "content_block_delta")


def assert_matches_the_fake(result: dict, records: dict[str, dict]) -> None:
    """Each operation's answer is the fake's, and its usage what the fake reported."""
    for op in OPERATIONS:
        assert "error" not in result[op], (op, result[op])
    invoke, record = result["invoke"], records["invoke"]
    assert invoke["body"]["content"][0]["text"] == record["output_text"]
    assert invoke["body"]["usage"]["input_tokens"] == record["input_tokens"]
    assert invoke["body"]["usage"]["output_tokens"] == record["output_tokens"]

    chunks, record = result["invokeStream"]["chunks"], records["invokeStream"]
    assert text_of_invoke_stream(chunks) == record["output_text"]
    metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
    assert metrics["inputTokenCount"] == record["input_tokens"]
    assert metrics["outputTokenCount"] == record["output_tokens"]

    converse, record = result["converse"], records["converse"]
    assert converse["text"] == record["output_text"]
    assert converse["usage"]["inputTokens"] == record["input_tokens"]
    assert converse["usage"]["outputTokens"] == record["output_tokens"]

    stream, record = result["converseStream"], records["converseStream"]
    assert stream["events"][0] == "messageStart" and stream["events"][-1] == "metadata"
    assert stream["text"] == record["output_text"]
    assert stream["usage"]["inputTokens"] == record["input_tokens"]
    assert stream["usage"]["outputTokens"] == record["output_tokens"]


def test_js_sdk_speaks_every_operation_to_the_fake_over_tls(js_sdk, tmp_path):
    tls = make_tls_files(tmp_path)
    with FakeBedrock(seed=11, tls=tls) as fake:
        result = run_sdk(js_sdk, fake.url, str(tls.ca_bundle), "not-checked-by-the-fake")
        records = {op: fake.usage_by_request_id[result[op]["requestId"]] for op in OPERATIONS}
    assert_matches_the_fake(result, records)
    assert {r["auth_scheme"] for r in records.values()} == {"Bearer"}
    assert [r["api"] for r in records.values()] == [
        "InvokeModel",
        "InvokeModelWithResponseStream",
        "Converse",
        "ConverseStream",
    ]


def test_js_sdk_through_the_proxy_over_tls_is_answered_and_metered(
    js_sdk, tls_sandbox, sandbox_customer
):
    customer = sandbox_customer()
    result = run_sdk(
        js_sdk, tls_sandbox.bedrock_endpoint_url, tls_sandbox.ca_bundle, customer["token"]
    )
    for op in OPERATIONS:
        assert "error" not in result[op], (op, result[op])
    lines = log_lines(tls_sandbox, customer["customer_id"])
    assert len(lines) == 4 and all(line["status"] == 200 for line in lines)
    fake = tls_sandbox.fake.usage_by_request_id
    records = dict(
        zip(OPERATIONS, (fake[line["bedrock_request_id"]] for line in lines), strict=True)
    )
    assert [r["api"] for r in records.values()] == [
        "InvokeModel",
        "InvokeModelWithResponseStream",
        "Converse",
        "ConverseStream",
    ]
    assert_matches_the_fake(result, records)
    for line, record in zip(lines, records.values(), strict=True):
        for key in (
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_write_input_tokens",
        ):
            assert line[key] == record[key], key
    totals = usage_totals(tls_sandbox, customer["customer_id"])
    assert totals["requests"] == 4
    assert totals["input_tokens"] == sum(r["input_tokens"] for r in records.values())
    assert totals["output_tokens"] == sum(r["output_tokens"] for r in records.values())
    token = customer["token"]
    assert all(token not in json.dumps(line) for line in lines)
