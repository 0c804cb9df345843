"""The session's sandbox keeps working after an in-process ``mock_aws`` wiped moto."""

from moto import mock_aws


def test_the_sandbox_puts_back_what_an_in_process_mock_reset(tls_sandbox):
    s3 = tls_sandbox.settings().session().client(
        "s3", endpoint_url=tls_sandbox.aws_endpoint_url
    )
    with mock_aws():  # resets every in-process moto backend, the sandbox's included
        pass
    assert tls_sandbox.restore_resources() is True
    s3.head_bucket(Bucket=tls_sandbox.log_bucket)
    assert tls_sandbox.restore_resources() is False


def test_a_customer_made_after_a_reset_is_served_and_metered(sandbox_customer, tls_sandbox):
    import json
    import urllib.request

    with mock_aws():
        pass
    assert tls_sandbox.restore_resources() is True  # what the autouse fixture does
    customer = sandbox_customer()
    request = urllib.request.Request(
        tls_sandbox.proxy_url,
        data=json.dumps(
            {
                "modelId": "anthropic.claude-3-haiku-20240307-v1:0",
                "anthropic_version": "bedrock-2023-05-31",
                "max_tokens": 16,
                "messages": [{"role": "user", "content": "hi"}],
            }
        ).encode(),
        headers={"Authorization": f"Bearer {customer['token']}"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200
    from tests.sandbox_support import log_lines

    assert len(log_lines(tls_sandbox, customer["customer_id"])) == 1
