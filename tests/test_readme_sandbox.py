"""The README's sandbox block, run as written by bash in a shell with no AWS setup."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
FULL_TOKEN = re.compile(r"bbk_[A-Za-z0-9_-]{30,}")


def sandbox_block() -> str:
    text = README.read_text()
    section = text.split("<!-- sandbox-block:start -->")[1].split("<!-- sandbox-block:end -->")[0]
    return re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)


@pytest.mark.skipif(not shutil.which("curl") or not shutil.which("bash"), reason="needs bash, curl")
def test_the_readmes_sandbox_block_runs_as_written(tmp_path):
    home = tmp_path / "home"  # the autouse fixture made it, empty
    # An operator's recorded prod stage in another region must not capture the sandbox.
    config = home / ".config" / "bedrock-billing" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[prod]\nregion = "eu-west-1"\nlog_bucket = "real-logs"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BEDROCK_BILLING_"))}
    env = {k: v for k, v in env.items() if k.lower() not in ("http_proxy", "https_proxy")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""))  # fmt: skip
    script = "set -euo pipefail\n" + sandbox_block()
    proc = subprocess.Popen(
        ["bash", "-c", script], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, (out, err)
    assert '"role":"assistant"' in out, out  # the proxy answered the curl call
    assert re.search(r"Acme", out), out  # the usage table names the customer
    assert re.search(r"│\s+1\s+│", out), out  # one request counted
    assert not FULL_TOKEN.search(out + err)  # the token went into a variable, nowhere else
