"""The deployment guide's commands, run in order against moto.

Steps labelled "(real account)" (credentials, Bedrock model access, quotas, the cURL
call) are skipped; every `bedrock-billing` command in the guide runs here.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from tests.cli_helpers import run
from tests.deploy_fixtures import moto_cfn_outputs  # noqa: F401
from tests.test_cli_deploy import deployed_env, fake_package  # noqa: F401

GUIDE = Path(__file__).resolve().parents[1] / "README.md"


def guide_commands() -> list[list[str]]:
    text = GUIDE.read_text()
    section = text.split("<!-- deploy-guide:start -->")[1].split("<!-- deploy-guide:end -->")[0]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S):
        for line in block.splitlines():
            line = line.strip()
            if line.startswith("bedrock-billing "):
                commands.append(shlex.split(line)[1:])
    return commands


def test_the_guide_has_the_deploy_steps():
    verbs = [c[0] for c in guide_commands()]
    assert verbs == ["deploy", "deploy", "status", "create"]
    assert "(real account)" in GUIDE.read_text()


def test_the_guides_commands_succeed_in_order(deployed_env, monkeypatch):  # noqa: F811
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    for args in guide_commands():
        result = run(*args)
        assert result.exit_code == 0
    out = run("status", "--stage", "prod", "--output", "json").stdout
    assert "CREATE_COMPLETE" in out
