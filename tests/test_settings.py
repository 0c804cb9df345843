import pytest

from bedrock_billing.core.errors import InvalidInput
from bedrock_billing.settings import config_path, resolve_settings


def write_config(tmp_path, text):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_defaults_without_any_configuration():
    s = resolve_settings()
    assert (s.stage, s.output, s.region, s.endpoint_url) == ("prod", "table", None, None)
    assert s.tables.customers == "bedrock-billing-prod-customers"


def test_flags_beat_variables_beat_file(tmp_path, monkeypatch):
    path = write_config(
        tmp_path,
        '[prod]\nregion = "eu-west-1"\nendpoint_url = "http://file"\noutput = "csv"\n'
        'athena_workgroup = "wg-file"\n',
    )
    monkeypatch.setenv("BEDROCK_BILLING_CONFIG", str(path))
    s = resolve_settings()
    assert (s.region, s.endpoint_url, s.output, s.athena_workgroup) == (
        "eu-west-1",
        "http://file",
        "csv",
        "wg-file",
    )
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://aws-env")
    with pytest.raises(InvalidInput, match="recorded in region eu-west-1.*AWS_REGION"):
        resolve_settings()  # a stage's recorded region is not moved by an ambient variable
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert resolve_settings().region == "eu-west-1"
    assert resolve_settings().endpoint_url == "http://aws-env"
    monkeypatch.setenv("BEDROCK_BILLING_REGION", "ap-south-1")
    monkeypatch.setenv("BEDROCK_BILLING_OUTPUT", "json")
    assert resolve_settings().region == "ap-south-1"
    assert resolve_settings().output == "json"
    s = resolve_settings(region="ca-central-1", output="table", endpoint_url="http://flag")
    assert (s.region, s.output, s.endpoint_url) == ("ca-central-1", "table", "http://flag")


def test_stage_selects_its_own_section_and_table_names(tmp_path, monkeypatch):
    path = write_config(tmp_path, '[prod]\nregion = "eu-west-1"\n[dev]\nregion = "us-east-2"\n')
    monkeypatch.setenv("BEDROCK_BILLING_CONFIG", str(path))
    dev = resolve_settings(stage="dev", table_prefix="acme")
    assert dev.region == "us-east-2"
    assert dev.tables.usage == "acme-dev-usage"


def test_xdg_config_home_is_the_default_location(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    assert config_path(env) == tmp_path / "bedrock-billing" / "config.toml"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"output": "yaml"},
        {"stage": "bad stage"},
        {"table_prefix": "x/y"},
        {"endpoint_url": "not-a-url"},
        {"endpoint_url": "ftp://127.0.0.1:5000"},
    ],
)
def test_bad_settings_are_usage_errors(kwargs):
    with pytest.raises(InvalidInput):
        resolve_settings(**kwargs)


def test_broken_config_file_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("BEDROCK_BILLING_CONFIG", str(write_config(tmp_path, "[prod\n")))
    with pytest.raises(InvalidInput, match="cannot read config file"):
        resolve_settings()


def test_a_sandbox_endpoint_does_not_take_the_recorded_stage_of_a_deployment(
    tmp_path, monkeypatch
):
    path = write_config(
        tmp_path, '[prod]\nregion = "eu-west-1"\nlog_bucket = "real-logs"\nstack_name = "x"\n'
    )
    monkeypatch.setenv("BEDROCK_BILLING_CONFIG", str(path))
    real = resolve_settings()
    assert (real.region, real.log_bucket) == ("eu-west-1", "real-logs")
    sandbox = resolve_settings(endpoint_url="http://127.0.0.1:5000", region="us-east-1")
    assert (sandbox.region, sandbox.log_bucket, sandbox.stack_name) == ("us-east-1", None, None)
    assert sandbox.recorded_region is None
