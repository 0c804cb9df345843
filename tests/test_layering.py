"""The design's layering: core, stores, services, proxy and deploy never import Typer or Rich.

Each non-CLI module is imported alone in a fresh interpreter and sys.modules is checked, so a
stray import anywhere in its import graph fails here, not in the deployed Lambda or a script.
pyathena may be loaded only by the Athena store, and only when a query runs (lazily).
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import bedrock_billing

LAYERS = ("core", "stores", "services", "proxy", "deploy")
FORBIDDEN = ("typer", "rich", "pyathena", "bedrock_billing.cli")


def non_cli_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(bedrock_billing.__path__, "bedrock_billing."):
        if info.name.split(".")[1] in LAYERS:
            names.append(info.name)
    return sorted(names)


def test_every_layer_has_modules_to_check():
    found = {name.split(".")[1] for name in non_cli_modules()}
    assert found == set(LAYERS)


def test_non_cli_modules_import_neither_typer_nor_rich():
    probe = (
        "import importlib, json, sys\n"
        "bad = {}\n"
        f"for name in {non_cli_modules()!r}:\n"
        "    before = set(sys.modules)\n"
        "    importlib.import_module(name)\n"
        "    hits = sorted(m for m in set(sys.modules) - before if any(\n"
        f"        m == f or m.startswith(f + '.') for f in {FORBIDDEN!r}))\n"
        "    if hits:\n"
        "        bad[name] = hits\n"
        "    for m in set(sys.modules) - before:\n"
        "        del sys.modules[m]\n"
        "print(json.dumps(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {}
