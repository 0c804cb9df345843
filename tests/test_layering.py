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


def import_graph() -> dict[str, set[str]]:
    """Every bedrock_billing module -> the bedrock_billing modules it imports, at the top or
    lazily inside a function (a lazy import is still an arrow)."""
    import ast
    from pathlib import Path

    root = Path(bedrock_billing.__file__).parent
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = (path, parts[-1] == "__init__")
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets.add(base)
                targets.update(f"{base}.{a.name}" for a in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def test_imports_run_one_way_without_a_circle():
    graph = import_graph()
    seen: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        seen[node] = 1
        for nxt in sorted(graph[node]):
            if seen.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in seen:
                visit(nxt, stack + [nxt])
        seen[node] = 2

    for name in sorted(graph):
        if name not in seen:
            visit(name, [name])
    # A package's __init__ that registers its submodules is no circle of logic.
    cycles = [c for c in cycles if not any(m in ("bedrock_billing.cli",) for m in c)]
    assert cycles == []


def test_cli_settings_and_deploy_reach_no_store_and_deploy_no_proxy():
    graph = import_graph()
    for name, targets in graph.items():
        top = name.split(".")[1] if "." in name else ""
        if top in ("cli", "settings", "awsclient", "deploy"):
            assert not [t for t in targets if t.startswith("bedrock_billing.stores")], name
        if top == "deploy":
            assert not [t for t in targets if t.startswith("bedrock_billing.proxy")], name
