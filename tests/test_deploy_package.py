"""The proxy zip: what it holds, and that the same code gives the same bytes."""

from __future__ import annotations

import io
import os
import zipfile

import pytest

from bedrock_billing.deploy.package import build_zip, package_root, zip_members
from tests.deploy_fixtures import make_tree


def test_zip_holds_the_proxy_core_and_prices_and_nothing_of_the_cli(tmp_path):
    root = make_tree(tmp_path)
    artifact = build_zip(root)
    names = zipfile.ZipFile(io.BytesIO(artifact.data)).namelist()
    assert names == [
        "bedrock_billing/__init__.py",
        "bedrock_billing/core/__init__.py",
        "bedrock_billing/core/schema.py",
        "bedrock_billing/data/prices.json",
        "bedrock_billing/proxy/__init__.py",
        "bedrock_billing/proxy/handler.py",
        "bedrock_billing/proxy/sub/helpers.py",
    ]
    assert list(artifact.files) == names


def test_same_code_gives_the_same_bytes_whatever_the_file_times(tmp_path):
    first = build_zip(make_tree(tmp_path / "a"))
    root = make_tree(tmp_path / "b")
    for i, name in enumerate(zip_members(root)):
        os.utime(root / name, (1_700_000_000 + i * 977, 1_700_000_000 + i * 977))
        os.chmod(root / name, 0o600)
    second = build_zip(root)
    assert second.data == first.data
    assert second.sha256 == first.sha256
    assert second.key("s") == first.key("s")


def test_entries_carry_fixed_time_and_permissions(tmp_path):
    artifact = build_zip(make_tree(tmp_path))
    for info in zipfile.ZipFile(io.BytesIO(artifact.data)).infolist():
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert (info.external_attr >> 16) == 0o100644


def test_changed_code_changes_the_key(tmp_path):
    root = make_tree(tmp_path)
    before = build_zip(root)
    (root / "bedrock_billing/proxy/handler.py").write_text("VALUE = 2\n")
    assert build_zip(root).key("s") != before.key("s")


def test_missing_proxy_is_a_clear_error(tmp_path):
    from bedrock_billing.core.errors import BillingError

    (tmp_path / "bedrock_billing" / "core").mkdir(parents=True)
    with pytest.raises(BillingError, match="proxy package is missing"):
        build_zip(tmp_path)


@pytest.mark.skipif(
    not (package_root() / "bedrock_billing" / "proxy" / "handler.py").exists(),
    reason="the proxy has not landed in this checkout yet",
)
def test_the_real_package_zip_has_the_handler_and_no_cli():
    names = build_zip().files
    assert "bedrock_billing/proxy/handler.py" in names
    assert any(n.startswith("bedrock_billing/core/") for n in names)
    banned = ("cli/", "stores/", "services/", "sandbox/", "deploy/")
    assert not [n for n in names if any(f"bedrock_billing/{b}" in n for b in banned)]


def test_the_real_zip_carries_the_streaming_wrapper_executable_where_lambda_looks():
    from bedrock_billing.deploy.config import STREAM_WRAPPER_PATH
    from bedrock_billing.deploy.package import STREAM_BOOTSTRAP

    archive = zipfile.ZipFile(io.BytesIO(build_zip().data))
    info = archive.getinfo(STREAM_BOOTSTRAP)
    assert (info.external_attr >> 16) == 0o100755  # Lambda executes it
    assert STREAM_WRAPPER_PATH == "/var/task/" + STREAM_BOOTSTRAP  # the zip unpacks there
    script = archive.read(STREAM_BOOTSTRAP).decode()
    assert script.startswith("#!/bin/sh\n")
    assert "-m bedrock_billing.proxy.streaming" in script
    assert "bedrock_billing/proxy/streaming.py" in archive.namelist()
