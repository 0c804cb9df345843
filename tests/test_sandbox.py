"""The local sandbox and the demo, as a user runs them: `bedrock-billing sandbox` in one
process, the CLI and curl from "another shell" with no AWS configuration at all, then
Ctrl-C; and `bedrock-billing demo` end to end."""

from __future__ import annotations

import http.client
import json
import os
import re
import selectors
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bedrock_billing.core.errors import BillingError
from bedrock_billing.sandbox import demo as demo_module
from bedrock_billing.sandbox.runner import Sandbox
from tests.cli_helpers import run

ROOT = Path(__file__).resolve().parent.parent
SPEC_BODY = json.dumps(demo_module.SPEC_PAYLOAD)
FULL_TOKEN = re.compile(r"bbk_[A-Za-z0-9_-]{30,}")


def bare_env(home: Path) -> dict[str, str]:
    """A shell with no AWS setup: no AWS_* or BEDROCK_BILLING_* variables, an empty HOME."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "BEDROCK_BILLING_")) and k.lower() not in _PROXIES
    }
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), PYTHONPATH=str(ROOT))
    return env


_PROXIES = {"http_proxy", "https_proxy", "all_proxy"}


def cli(env, *args: str, expect: int = 0) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "bedrock_billing", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == expect, (done.returncode, done.stdout, done.stderr)
    return done


def read_line(proc: subprocess.Popen, timeout: float = 60) -> str:
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            proc.kill()
            pytest.fail(f"no line from the sandbox in {timeout} s")
    line = proc.stdout.readline()
    if not line:
        pytest.fail(f"the sandbox exited early: {proc.wait()} {proc.stderr.read()}")
    return line


def listening_sockets(pid: int) -> list[tuple[str, int]]:
    """(host, port) of every TCP socket of ``pid`` in LISTEN state, from /proc."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                continue
            host_hex, port_hex = fields[1].split(":")
            raw = bytes.fromhex(host_hex)
            if len(raw) == 4:
                host = socket.inet_ntoa(raw[::-1])  # the kernel prints it little-endian
            else:
                host = "ipv6:" + host_hex
            found.append((host, int(port_hex, 16)))
    return found


def assert_port_free(host: str, port: int) -> None:
    with socket.socket() as probe:
        assert probe.connect_ex((host, port)) != 0, f"something still listens on {port}"
    with socket.socket() as again:  # and a new server could take the port at once
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind((host, port))


def post_spec_example(url: str, token: str) -> dict:
    """The spec's cURL example, with curl when the machine has it."""
    curl = shutil.which("curl")
    if curl:
        done = subprocess.run(
            [curl, "-sS", "--noproxy", "*", "-X", "POST", url,
             "-H", "Content-Type: application/json",
             "-H", f"Authorization: Bearer {token}",
             "-d", SPEC_BODY],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)
    status, body = demo_module.post_json(url, json.loads(SPEC_BODY), token)
    assert status == 200, body
    return body


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="reads sockets from /proc")
def test_sandbox_serves_another_shell_with_no_aws_setup_and_frees_its_ports(tmp_path):
    env = bare_env(tmp_path / "home")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bedrock_billing",
            "sandbox",
            "--port",
            "0",
            "--tls-port",
            "0",
            "--output",
            "json",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        info = json.loads(read_line(proc))
        assert info["proxy_url"].endswith("/prod/bedrock")
        assert info["stage"] == "prod" and info["region"] == "us-east-1"
        assert info["log_bucket"] == "bedrock-billing-prod-logs-123456789012-us-east-1"
        ports = {int(u.rsplit(":", 1)[1].split("/")[0]) for u in (
            info["proxy_url"], info["aws_endpoint_url"], info["bedrock_url"],
            info["bedrock_endpoint_url"])}  # fmt: skip
        assert info["bedrock_endpoint_url"].startswith("https://127.0.0.1:")
        assert Path(info["ca_bundle"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
        listening = listening_sockets(proc.pid)
        assert {port for _, port in listening} == ports
        assert {host for host, _ in listening} == {"127.0.0.1"}

        endpoint = ["--endpoint-url", info["aws_endpoint_url"]]
        made = json.loads(
            cli(env, "create", "--name", "Acme", "--email", "ops@acme.example", *endpoint,
                "--output", "json").stdout
        )  # fmt: skip
        answer = post_spec_example(info["proxy_url"], made["token"])
        assert answer["role"] == "assistant"
        assert answer["model"] == "anthropic.claude-3-sonnet-20240229-v1:0"
        assert answer["content"][0]["text"]
        served = answer["usage"]
        # The SDK base URLs reach the same proxy (the model list is free: no usage changes).
        assert info["anthropic_base_url"] + "/bedrock" == info["proxy_url"]
        assert info["openai_base_url"] == info["anthropic_base_url"] + "/v1"
        assert info["portal_url"] == info["anthropic_base_url"] + "/portal"
        page, account = _portal(info["portal_url"], made["token"])
        assert page.startswith("<!doctype html>") and account["customer_id"] == made["customer_id"]
        openai = pytest.importorskip("openai")
        listed = openai.OpenAI(base_url=info["openai_base_url"], api_key=made["token"])
        assert "claude-3-haiku-20240307" in [m.id for m in listed.models.list()]

        who = ["--customer-id", made["customer_id"], *endpoint, "--output", "json"]
        counters = json.loads(cli(env, "usage", *who).stdout)
        assert counters["totals"]["requests"] == 1
        assert counters["totals"]["input_tokens"] == served["input_tokens"]
        assert counters["totals"]["output_tokens"] == served["output_tokens"]
        log = json.loads(cli(env, "usage", *who, "--source", "athena").stdout)
        assert log["source"] == "local"  # the sandbox marker picks the local engine
        assert log["totals"] == counters["totals"]
        checked = json.loads(cli(env, "reconcile", *endpoint, "--output", "json").stdout)
        assert checked["totals"]["differences"] == 0 and checked["log_source"] == "local"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        err = proc.stderr.read()
    assert code == 0, err
    assert "Traceback" not in err
    for port in ports:
        assert_port_free("127.0.0.1", port)


def _portal(portal_url: str, token: str) -> tuple[str, dict]:
    """The portal's page, and the account it shows for ``token`` (no proxy, loopback)."""
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    page = opener.open(portal_url, timeout=30).read().decode()
    account_url = portal_url.rsplit("/portal", 1)[0] + "/v1/account"
    request = urllib.request.Request(account_url, headers={"Authorization": f"Bearer {token}"})
    return page, json.loads(opener.open(request, timeout=30).read())


def test_sandbox_stops_on_sigterm_too(tmp_path):
    env = bare_env(tmp_path / "home")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bedrock_billing", "sandbox", "--port", "0", "--tls-port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with selectors.DefaultSelector() as sel:  # the human text goes to stderr
            sel.register(proc.stderr, selectors.EVENT_READ)
            assert sel.select(60), "no announcement"
        first = proc.stderr.readline()
        assert first.startswith("Sandbox ready"), first
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0
    assert proc.stdout.read() == ""  # data only on stdout, and there is none without json


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com"])
def test_sandbox_refuses_a_host_that_is_not_loopback(host):
    result = run("sandbox", "--host", host, "--port", "0", expect=2)
    assert "loopback" in result.stderr


def test_sandbox_in_process_listens_on_loopback_only_and_leaves_nothing_behind():
    threads_before = set(threading.enumerate())
    kept: list[http.client.HTTPConnection] = []
    box = Sandbox(port=0).start()
    try:
        addresses = box.listening_addresses()
        assert len(addresses) == 4
        assert {host for host, _ in addresses} == {"127.0.0.1"}
        assert box.proxy_url == f"http://127.0.0.1:{addresses[2][1]}/prod/bedrock"
        assert box.bedrock_endpoint_url == f"https://127.0.0.1:{addresses[3][1]}"
        state_dir = box.state_dir
        # A keep-alive client holds a handler thread on each server until stop cuts it.
        for _host, port in addresses[1:]:
            if port == addresses[3][1]:
                context = ssl.create_default_context(cafile=box.ca_bundle)
                conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
            else:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/prod/bedrock")
            conn.getresponse().read()
            kept.append(conn)
    finally:
        box.stop()
    for host, port in addresses:
        assert_port_free(host, port)
    assert not state_dir.exists()  # the certificates went with it
    deadline = time.monotonic() + 5  # handler threads end once their sockets are shut
    while set(threading.enumerate()) - threads_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(threading.enumerate()) - threads_before == set()
    box.stop()  # twice is harmless
    for conn in kept:
        conn.close()


def test_a_busy_port_is_a_clear_error_and_nothing_is_left_running():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        box = Sandbox(port=port)
        with pytest.raises(BillingError, match="--port 0"):
            box.start()
    assert box.moto is None and box.fake is None and box.proxy_server is None


def test_demo_runs_the_main_job_end_to_end_in_well_under_a_minute(tmp_path):
    started = time.monotonic()
    done = cli(bare_env(tmp_path / "home"), "demo")
    seconds = time.monotonic() - started
    assert seconds < 30, f"the demo took {seconds:.1f} s"
    out = done.stdout
    for text in ("Requests", "daily_request_limit_exceeded", "model_not_allowed", "Usage"):
        assert text in out
    assert "invalid_token" in out
    for name in ("Acme Corp", "Globex", "Initech"):
        assert name in out
    assert "Invoices" in out and "49.50" in out  # the team plan: 49.00 + one request over
    assert "checks passed" in done.stderr
    assert not FULL_TOKEN.search(out + done.stderr)


def test_demo_json_is_one_object_with_usage_and_invoices():
    result = run("demo", "--output", "json")
    data = json.loads(result.stdout)
    assert data["ok"] is True and data["checks"]["failed"] == []
    assert data["usage"]["totals"]["requests"] == 10  # 9 over HTTP, 1 through boto3
    assert data["usage"]["totals"]["refused"] == 3
    sdk = data["requests"][-1]
    assert sdk["client"] == demo_module.SDK_CLIENT and sdk["status"] == 200 and sdk["answer"]
    assert sdk["usage"]["input_tokens"] > 0 and sdk["usage"]["output_tokens"] > 0
    assert data["sandbox"]["bedrock_endpoint_url"].startswith("https://127.0.0.1:")
    assert data["reconcile"]["log_source"] == "local"
    assert sorted(i["plan"] for i in data["invoices"]["invoices"]) == ["scale", "starter", "team"]
    assert [r["status"] for r in data["requests"]].count(401) == 1
    assert not FULL_TOKEN.search(result.stdout)


def test_demo_fails_when_the_sdk_call_is_not_served(monkeypatch):
    # Initech may use Haiku only: the boto3 call with Sonnet is refused (AccessDenied).
    monkeypatch.setattr(demo_module, "SDK_MODEL", demo_module.SONNET)
    result = run("demo", expect=1)
    assert "check failed: request 14 (Initech" in result.stderr


def test_demo_exits_1_and_says_which_check_failed(monkeypatch):
    # Acme gets no daily limit, so its 4th and 5th requests are served, not refused.
    customers = tuple(
        demo_module.DemoCustomer(c.name, c.email, c.plan, {}) if c.name == "Acme Corp" else c
        for c in demo_module.CUSTOMERS
    )
    monkeypatch.setattr(demo_module, "CUSTOMERS", customers)
    result = run("demo", expect=1)
    assert "check failed: request 4 (Acme Corp" in result.stderr
    assert "Error: demo:" in result.stderr
