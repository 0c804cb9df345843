"""Shared helpers for the deploy tests: a fake package tree and moto with its gaps closed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bedrock_billing.deploy.config import DeployConfig

MODELS = ("anthropic.claude-3-haiku-20240307-v1:0",)

PACKAGE_FILES = [
    "bedrock_billing/__init__.py",
    "bedrock_billing/proxy/__init__.py",
    "bedrock_billing/proxy/handler.py",
    "bedrock_billing/proxy/sub/helpers.py",
    "bedrock_billing/core/__init__.py",
    "bedrock_billing/core/schema.py",
    "bedrock_billing/data/prices.json",
    # Must stay out of the zip:
    "bedrock_billing/cli/__init__.py",
    "bedrock_billing/cli/commands/deploy.py",
    "bedrock_billing/stores/dynamo.py",
    "bedrock_billing/services/usage.py",
    "bedrock_billing/sandbox/server.py",
    "bedrock_billing/deploy/template.py",
    "bedrock_billing/proxy/__pycache__/handler.cpython-311.pyc",
    "bedrock_billing/data/notes.txt",
]


def make_tree(root: Path) -> Path:
    for rel in PACKAGE_FILES:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {rel}\nVALUE = 1\n")
    return root


def config(**kwargs) -> DeployConfig:
    kwargs.setdefault("models", MODELS)
    return DeployConfig(**kwargs)


@pytest.fixture
def moto_cfn_outputs(monkeypatch):
    """moto executes a change set without refreshing the stack's outputs and parameters
    (create_stack does both); close that gap so the tests see what CloudFormation shows."""
    from moto.cloudformation.models import CloudFormationBackend

    original = CloudFormationBackend.execute_change_set

    def execute(self, change_set_name, stack_name=None):
        original(self, change_set_name, stack_name)
        change_set = self.describe_change_set(change_set_name)
        stack = self.stacks[change_set.stack_id]
        stack._parse_template()
        stack.output_map = stack._create_output_map()
        stack.parameters = change_set.parameters

    monkeypatch.setattr(CloudFormationBackend, "execute_change_set", execute)
