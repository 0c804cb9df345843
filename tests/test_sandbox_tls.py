"""The sandbox over TLS: the proxy on an HTTPS port with a certificate made at start, as the
SDKs that send Bedrock API keys (Bearer tokens) require."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from pathlib import Path

import pytest
import requests

from bedrock_billing.localhttp.tls import make_tls_files
from bedrock_billing.sandbox import demo as demo_module
from bedrock_billing.sandbox.proxy_server import ProxyServer
from bedrock_billing.sandbox.runner import Sandbox
from tests.test_local_servers import EchoProxy


def test_info_names_the_https_endpoint_and_its_ca(tls_sandbox):
    info = tls_sandbox.info()
    assert info["bedrock_endpoint_url"] == tls_sandbox.bedrock_endpoint_url
    assert info["bedrock_endpoint_url"].startswith("https://127.0.0.1:")
    assert info["proxy_url"].startswith("http://127.0.0.1:")  # unchanged
    pem = Path(info["ca_bundle"]).read_text()
    assert pem.count("BEGIN CERTIFICATE") == 1 and "PRIVATE" not in pem


def test_the_spec_request_over_https_is_answered_and_metered(tls_sandbox, sandbox_customer):
    from bedrock_billing.services.usage_reports import usage_report
    from bedrock_billing.services.usage_sources import counter_store

    customer = sandbox_customer()
    url = tls_sandbox.bedrock_endpoint_url + f"/{tls_sandbox.stage}/bedrock"
    answer = requests.post(
        url,
        json=demo_module.SPEC_PAYLOAD,
        headers={"Authorization": f"Bearer {customer['token']}"},
        verify=tls_sandbox.ca_bundle,
        proxies={"https": "", "http": ""},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    usage = answer.json()["usage"]
    today = tls_sandbox.clock().date()
    report = usage_report(
        counter_store(tls_sandbox.settings()), [customer["customer_id"]], today, today
    )
    assert report.totals["requests"] == 1
    assert report.totals["input_tokens"] == usage["input_tokens"]
    assert report.totals["output_tokens"] == usage["output_tokens"]


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost"])
def test_certificate_names_loopback_and_chains_to_the_ca(tls_sandbox, name):
    port = int(tls_sandbox.bedrock_endpoint_url.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=tls_sandbox.ca_bundle)  # checks the name
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=name) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            assert tls.selected_alpn_protocol() in (None, "http/1.1")


def test_a_client_without_the_ca_is_refused(tls_sandbox):
    port = int(tls_sandbox.bedrock_endpoint_url.rsplit(":", 1)[1])
    context = ssl.create_default_context()  # the system's CAs only
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            context.wrap_socket(raw, server_hostname="127.0.0.1")


def test_plain_http_to_the_https_port_fails_fast_and_the_server_keeps_serving(tls_sandbox, capfd):
    port = int(tls_sandbox.bedrock_endpoint_url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        conn.request("GET", "/")
        conn.getresponse().read()
    conn.close()
    test_certificate_names_loopback_and_chains_to_the_ca(tls_sandbox, "127.0.0.1")
    assert "Traceback" not in capfd.readouterr().err


def test_a_given_state_dir_keeps_the_certificates_a_default_one_is_removed(tmp_path):
    box = Sandbox(port=0, tls_port=0, state_dir=tmp_path / "state").start()
    try:
        assert Path(box.ca_bundle).parent.parent == tmp_path / "state"
        key = tmp_path / "state" / "tls" / "server-key.pem"
        assert key.stat().st_mode & 0o077 == 0  # the private key is the owner's alone
    finally:
        box.stop()
    assert (tmp_path / "state" / "tls" / "ca.pem").exists()


def test_proxy_server_tls_option_serves_https(tmp_path):
    files = make_tls_files(tmp_path)
    proxy = EchoProxy()
    with ProxyServer(proxy, tls=files) as server:
        assert server.url.startswith("https://127.0.0.1:")
        answer = requests.get(
            server.url + "/prod/x?q=1", verify=str(files.ca_bundle), proxies={"https": ""}
        )
        assert answer.status_code == 200
        assert json.loads(answer.text)["path"] == "/prod/x"
    assert proxy.events[-1]["queryStringParameters"] == {"q": "1"}


def test_a_customer_api_key_in_the_environment_does_not_change_how_the_proxy_calls_bedrock(
    tls_sandbox, sandbox_customer, monkeypatch
):
    customer = sandbox_customer()
    # As when a test or the demo acts as an SDK customer in the sandbox's own process.
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", customer["token"])
    answer = requests.post(
        tls_sandbox.proxy_url,
        json=demo_module.SPEC_PAYLOAD,
        headers={"Authorization": f"Bearer {customer['token']}"},
        proxies={"http": ""},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert tls_sandbox.fake.calls[-1]["auth_scheme"] == "AWS4-HMAC-SHA256"


def test_proxy_server_process_serves_https_with_tls_dir(tmp_path):
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "bedrock_billing.sandbox.proxy_server", "--port", "0",
         "--region", "us-east-1", "--tls-dir", str(tmp_path / "tls")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        announce = json.loads(proc.stdout.readline())
        assert announce["url"].startswith("https://127.0.0.1:")
        assert announce["ca_bundle"] == str(tmp_path / "tls" / "ca.pem")
        answer = requests.head(
            announce["url"] + "/", verify=announce["ca_bundle"], proxies={"https": ""}, timeout=30
        )
        assert answer.status_code == 200 and answer.content == b""
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
