"""The operator's CLI as AWS users expect it (issue 16): one test (or a few) per item."""

from __future__ import annotations

import json
import os
import uuid

import boto3

from tests.cli_helpers import run, run_json
from tests.deploy_fixtures import moto_cfn_outputs  # noqa: F401
from tests.test_cli_deploy import MODEL, deployed_env, fake_package  # noqa: F401
from tests.test_cli_invoice import seeded  # noqa: F401


def _config(text: str) -> None:
    path = os.path.join(os.environ["XDG_CONFIG_HOME"], "bedrock-billing", "config.toml")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(text)


def _tables(url: str, region: str) -> list[str]:
    client = boto3.client("dynamodb", endpoint_url=url, region_name=region,
                          aws_access_key_id="x", aws_secret_access_key="x")  # fmt: skip
    return client.list_tables()["TableNames"]


# 1. A stage lives in one region ------------------------------------------------------------


def test_an_ambient_region_cannot_move_a_recorded_stage(moto_server, monkeypatch):
    stage = f"qa{uuid.uuid4().hex[:6]}"
    _config(f'[{stage}]\nregion = "us-east-1"\nendpoint_url = "{moto_server}"\n')
    before = [t for t in _tables(moto_server, "eu-west-1") if stage in t]
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    refused = run("create", "--name", "A", "--email", "a@x.example", "--stage", stage, expect=2)
    assert "recorded in region us-east-1" in refused.stderr and "eu-west-1" in refused.stderr
    assert run("status", "--stage", stage, expect=2).stderr.count("\n") == 1
    # an explicit region reaches eu-west-1, but no table is created there implicitly
    on_purpose = run("create", "--name", "A", "--email", "a@x.example", "--stage", stage,
                     "--region", "eu-west-1", expect=1)  # fmt: skip
    assert "init --region eu-west-1" in on_purpose.stderr
    assert [t for t in _tables(moto_server, "eu-west-1") if stage in t] == before == []
    monkeypatch.delenv("AWS_REGION")
    made = run("create", "--name", "A", "--email", "a@x.example", "--stage", stage)
    assert f"Wrote to stage {stage}, region us-east-1, account 123456789012" in made.stderr
    assert len([t for t in _tables(moto_server, "us-east-1") if stage in t]) == 4


def test_init_records_the_stage_region(moto_aws):
    run("init", "--stage", "rec")
    shown = run_json("config", "show", "--stage", "rec")
    region = next(r for r in shown["settings"] if r["name"] == "region")
    assert region == {"name": "region", "value": "us-east-1", "source": "env AWS_REGION"}
    os.environ["AWS_REGION"] = "eu-west-1"  # moto_aws's monkeypatch restores it
    assert "recorded in region us-east-1" in run("list", "--stage", "rec", expect=2).stderr


# 2. deploy --dry-run writes nothing ---------------------------------------------------------


def _footprint():
    s3 = boto3.client("s3", region_name="us-east-1")
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    objects = sum(s3.list_objects_v2(Bucket=b).get("KeyCount", 0) for b in buckets)
    stacks = boto3.client("cloudformation", region_name="us-east-1").list_stacks()["StackSummaries"]
    return len(buckets), objects, sorted((s["StackName"], s["StackStatus"]) for s in stacks)


def test_dry_run_makes_no_write_and_preview_removes_what_it_made(deployed_env):  # noqa: F811
    before = _footprint()
    dry = run_json("deploy", "--model", MODEL, "--dry-run")
    assert dry["outcome"] == "dry-run" and any(c["action"] == "Add" for c in dry["changes"])
    assert _footprint() == before
    preview = run_json("deploy", "--model", MODEL, "--preview")
    assert preview["outcome"] == "preview" and preview["changes"]
    buckets, objects, stacks = _footprint()
    assert (buckets, objects) == before[:2]
    assert all(status == "DELETE_COMPLETE" for _, status in stacks)
    run("deploy", "--model", MODEL, "--yes")
    deployed = _footprint()
    again = run_json("deploy", "--model", MODEL, "--memory", "1024", "--dry-run")
    assert [(c["action"], c["logical_id"]) for c in again["changes"]] == [
        ("Modify", "ProxyFunction")
    ]
    assert _footprint() == deployed


# 3. --version and completion ---------------------------------------------------------------


def test_version_and_shell_completion():
    from importlib.metadata import version

    assert run("--version").stdout.strip() == f"bedrock-billing {version('bedrock-billing')}"
    script = run("--show-completion", "bash").stdout
    assert "_BEDROCK_BILLING_COMPLETE" in script or "complete" in script
    installed = run("--install-completion", "bash")
    assert "completion installed" in installed.stdout
    home = os.environ["HOME"]
    assert os.path.exists(os.path.join(home, ".bash_completions", "bedrock-billing.sh"))


def test_the_completion_variable_completes_commands(monkeypatch):
    import subprocess
    import sys

    env = dict(os.environ, _BEDROCK_BILLING_COMPLETE="complete_bash",
               COMP_WORDS="bedrock-billing cre", COMP_CWORD="1")  # fmt: skip
    script = os.path.join(os.path.dirname(sys.executable), "bedrock-billing")
    done = subprocess.run([script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "create" in done.stdout.split() and "credits" in done.stdout.split()


# 4. Endpoints as boto3 resolves them -------------------------------------------------------


def test_service_specific_endpoints_win_where_boto3_lets_them(monkeypatch):
    from bedrock_billing.awsclient import endpoint_for, service_endpoint_variable
    from bedrock_billing.settings import resolve_settings

    assert service_endpoint_variable("dynamodb") == "AWS_ENDPOINT_URL_DYNAMODB"
    assert service_endpoint_variable("bedrock-runtime") == "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"
    env = {"AWS_ENDPOINT_URL": "http://global:1", "AWS_ENDPOINT_URL_DYNAMODB": "http://ddb:2"}
    from_env = resolve_settings(env=env)
    assert endpoint_for(from_env, "dynamodb", env) == "http://ddb:2"
    assert endpoint_for(from_env, "s3", env) == "http://global:1"
    flag = resolve_settings(endpoint_url="http://flag:3", env=env)
    assert endpoint_for(flag, "dynamodb", env) == "http://flag:3"  # --endpoint-url wins
    ignored = dict(env, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS="true")
    assert endpoint_for(resolve_settings(env=ignored), "dynamodb", ignored) is None


def test_a_service_specific_loopback_endpoint_gets_the_dummy_credentials(
    moto_server, monkeypatch
):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_server)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", moto_server)
    stage = f"ep{uuid.uuid4().hex[:6]}"
    run("init", "--stage", stage)  # no credentials configured: the dummy ones apply
    assert run_json("list", "--stage", stage)["count"] == 0
    dead = run("list", "--stage", stage, "--endpoint-url", "http://127.0.0.1:9", expect=3)
    assert "cannot reach" in dead.stderr


# 5. Output holes ---------------------------------------------------------------------------


def test_status_and_dry_run_print_csv_rows(deployed_env):  # noqa: F811
    status = run("status", "-o", "csv").stdout.splitlines()
    assert status[0] == "stack_name,region,status,reason,last_updated"
    assert status[1] == "bedrock-billing-prod,us-east-1,NOT_DEPLOYED,,"
    assert run_json("status")["last_updated"] is None
    changes = run("deploy", "--model", MODEL, "--dry-run", "-o", "csv").stdout.splitlines()
    assert changes[0] == "action,logical_id,resource_type,replacement"
    assert "Add,ProxyFunction,AWS::Lambda::Function," in changes
    run("deploy", "--model", MODEL, "--yes")
    updated = run_json("status")["last_updated"]
    assert updated.endswith("Z") and len(updated) == len("2026-01-01T00:00:00Z")


def test_prices_export_csv_prints_rows():
    lines = run("prices", "export", "-o", "csv").stdout.splitlines()
    assert lines[0] == "model,input,output,cache_read,cache_write"
    assert len(lines) > 1 and not lines[1].startswith("{")


def test_credit_grants_keep_their_keys(moto_aws):
    created = run_json("create", "--name", "A", "--email", "a@x.example")
    added = run_json("credits", "add", "--customer-id", created["customer_id"],
                     "--amount", "10", "--note", "welcome", "--expires", "2099-01-01")  # fmt: skip
    run("credits", "add", "--customer-id", created["customer_id"], "--amount", "5")
    grants = run_json("credits", "list", "--customer-id", created["customer_id"])["grants"]
    assert len(grants) == 2
    assert {frozenset(g) for g in grants} == {frozenset(set(added) - {"customer_id"} | {"state"})}
    assert any(g["expires"] is None and g["note"] is None for g in grants)


def test_list_pages_as_the_aws_cli_does(moto_aws):
    for i in range(7):
        run("create", "--name", f"C{i}", "--email", f"c{i}@x.example")
    first = run("list", "--max-items", "3")
    assert "3 of 7 customer(s)" in first.stdout and "4 more: --starting-token" in first.stderr
    seen, token = [], None
    while True:
        extra = ["--starting-token", token] if token else []
        page = run_json("list", "--max-items", "3", *extra)
        assert page["total"] == 7
        seen += [c["name"] for c in page["customers"]]
        token = page["next_token"]
        if not token:
            break
    assert seen == [f"C{i}" for i in range(7)]
    assert run("list", "--starting-token", "garbage!", expect=2).stderr.startswith("Error: ")


# 6. Names in tables, id prefixes everywhere ------------------------------------------------


def test_usage_shows_names_and_every_command_takes_an_id_prefix(moto_aws):
    a = run_json("create", "--name", "Acme Widgets", "--email", "a@x.example")["customer_id"]
    table = run("usage", "--all", "--group-by", "none").stdout
    assert "Acme Widgets" in table and a[:8] in table and a not in table
    assert run_json("show", a[:8])["customer_id"] == a
    assert run_json("show", "--customer-id", a[:8])["customer_id"] == a
    assert run_json("update-limits", "--customer-id", a[:8], "--daily-limit", "9")[
        "limits"]["daily_request_limit"] == 9  # fmt: skip
    assert run_json("usage", "--customer-id", a[:8])["rows"] == []
    assert "no customer" in run("show", "ffffffff", expect=1).stderr
    assert run("show", "ab", expect=2).stderr.count("\n") == 1
    assert "once" in run("show", a, "--customer-id", a, expect=2).stderr


def test_an_ambiguous_prefix_is_refused(moto_aws, monkeypatch):
    from bedrock_billing.core import customers as rules

    ids = iter(["abcd0000-0000-4000-8000-000000000001", "abcd0000-0000-4000-8000-000000000002"])
    monkeypatch.setattr(rules, "new_customer_id", lambda: next(ids))
    run("create", "--name", "A", "--email", "a@x.example")
    run("create", "--name", "B", "--email", "b@x.example")
    assert "ambiguous" in run("show", "abcd0000", expect=2).stderr
    assert run_json("show", "abcd0000-0000-4000-8000-000000000002")["name"] == "B"


# 7. Parsing and help -----------------------------------------------------------------------


def test_short_output_option_attached_after_the_command(moto_aws):
    run("init")
    assert json.loads(run("list", "-ojson").stdout)["count"] == 0


def test_every_commands_help_has_the_global_options_and_examples_and_no_bool_type():
    for command in (["list"], ["create"], ["credits", "list"], ["deploy"], ["config", "show"]):
        text = run(*command, "--help").stdout
        assert "Global options" in text and "--endpoint-url" in text, command
        assert "Examples:" in text and "bedrock-billing " + " ".join(command) in text, command
        assert "<bool>" not in text, command


def test_debug_lets_the_traceback_through(monkeypatch):
    from bedrock_billing.cli import app
    from tests.cli_helpers import runner

    result = runner().invoke(app, ["--debug", "--endpoint-url", "http://127.0.0.1:9", "list"])
    assert result.exception is not None and not isinstance(result.exception, SystemExit)


def test_config_show_says_where_each_setting_came_from(monkeypatch):
    _config('[prod]\nregion = "eu-west-1"\ntable_prefix = "acme"\n')
    monkeypatch.setenv("BEDROCK_BILLING_OUTPUT", "json")
    shown = json.loads(run("config", "show", "--stage", "prod").stdout)
    by_name = {r["name"]: r for r in shown["settings"]}
    assert by_name["region"]["source"] == "config file [prod]"
    assert by_name["output"] == {"name": "output", "value": "json",
                                 "source": "env BEDROCK_BILLING_OUTPUT"}  # fmt: skip
    assert by_name["stage"]["source"] == "flag --stage"
    assert by_name["profile"]["source"] == "unset"
    table = run("config", "show", "-o", "table").stdout
    assert "config file [prod]" in table and "Endpoints" in table


# 9. Invoice documents a customer can pay ---------------------------------------------------


def test_invoice_documents_carry_seller_due_date_sign_and_a_draft_mark(
    seeded, tmp_path, monkeypatch  # noqa: F811
):
    from tests.test_cli_invoice import BOOK

    monkeypatch.setenv("BEDROCK_BILLING_SELLER_NAME", "Resale & Co Ltd")
    monkeypatch.setenv("BEDROCK_BILLING_SELLER_ADDRESS", "1 Main St, Dublin")
    monkeypatch.setenv("BEDROCK_BILLING_SELLER_TAX_ID", "IE1234567X")
    monkeypatch.setenv("BEDROCK_BILLING_PAYMENT_TERMS_DAYS", "14")
    args = ["--period", "2026-10", "--stage", "test", "--price-book", BOOK, "--force"]
    drafts = run_json("invoice", "--all", *args, "--format", "markdown",
                      "--out", str(tmp_path / "md"))["invoices"]  # fmt: skip
    doc = next(d for d in drafts if any(line.get("metric") == "input_tokens"
                                        for line in d["lines"]))  # fmt: skip
    md = (tmp_path / "md" / f"{doc['invoice_number']}.md").read_text()
    assert md.startswith(f"# DRAFT Invoice {doc['invoice_number']}") and "> **DRAFT" in md
    assert "Resale & Co Ltd" in md and "1 Main St, Dublin" in md and "IE1234567X" in md
    assert "**Due:** 14 days after issue" in md
    assert f"**Total:** ${doc['total']}" in md  # the invoice's own total, with its sign
    assert "/ 1M tokens" in md and "0.0000" not in md
    issued = run_json("invoice", "--all", *args, "--finalize", "--allow-unpriced",
                      "--format", "html", "--out", str(tmp_path / "html"))["invoices"]  # fmt: skip
    again = next(d for d in issued if d["customer_id"] == doc["customer_id"])
    assert (again["total"], [line["amount"] for line in again["lines"]]) == (
        doc["total"], [line["amount"] for line in doc["lines"]])  # fmt: skip
    html = (tmp_path / "html" / f"{again['invoice_number']}.html").read_text()
    assert "DRAFT" not in html and "Resale &amp; Co Ltd" in html
    due = again["issued_at"][:10]
    from datetime import date, timedelta

    assert (date.fromisoformat(due) + timedelta(days=14)).isoformat() in html
