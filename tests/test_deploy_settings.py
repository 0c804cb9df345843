"""The CLI configuration file a deploy writes."""

from __future__ import annotations

import tomllib

from bedrock_billing.settings import config_path as default_config_path
from bedrock_billing.settings import write_stage_config


def test_writing_one_stage_keeps_the_others(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(
        'default_stage = "prod"\n\n[dev]\nregion = "eu-west-1"\nextra = 3\n\n'
        '[dev.pricing]\ncurrency = "EUR"\n\n[prod]\nregion = "us-east-1"\napi_url = "old"\n'
    )
    write_stage_config(path, "prod", {"api_url": "https://x/prod/bedrock", "log_prefix": "logs/"})
    data = tomllib.loads(path.read_text())
    assert data["default_stage"] == "prod"
    assert data["dev"] == {"region": "eu-west-1", "extra": 3, "pricing": {"currency": "EUR"}}
    assert data["prod"] == {
        "region": "us-east-1",
        "api_url": "https://x/prod/bedrock",
        "log_prefix": "logs/",
    }


def test_values_with_quotes_and_backslashes_round_trip(tmp_path):
    path = tmp_path / "nested" / "config.toml"
    odd = 'a "quoted" \\ value\twith tab'
    write_stage_config(path, "my-stage", {"athena_table": odd})
    assert tomllib.loads(path.read_text())["my-stage"]["athena_table"] == odd


def test_config_path_follows_the_environment(tmp_path):
    assert default_config_path({"BEDROCK_BILLING_CONFIG": "/x/c.toml"}).as_posix() == "/x/c.toml"
    assert default_config_path({"XDG_CONFIG_HOME": "/xdg"}).as_posix() == (
        "/xdg/bedrock-billing/config.toml"
    )
    assert default_config_path({"HOME": "/home/u"}).as_posix() == (
        "/home/u/.config/bedrock-billing/config.toml"
    )


def test_a_deploy_keeps_the_operators_comments_and_layout(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(
        "# my installations\n[prod]\n# eu for the GDPR\nregion = \"eu-west-1\"  # do not move\n"
        "seller_name = \"Acme Resale Ltd\"\n"
    )
    write_stage_config(path, "prod", {"api_url": "https://x/prod/bedrock"})
    text = path.read_text()
    assert "# my installations" in text and "# eu for the GDPR" in text
    assert 'region = "eu-west-1"  # do not move' in text
    assert tomllib.loads(text)["prod"]["api_url"] == "https://x/prod/bedrock"
