"""Bulk operations from CSV through the CLI, against moto in process: 1,000 rows with 3 bad
ones create 997 customers, report the 3, exit 4 and write the tokens to a 0600 file; a dry
run writes nothing; one row's failure never half-applies another."""

from __future__ import annotations

import csv
import io
import json
import os
import stat

import boto3
import pytest

from tests.cli_helpers import run, run_json

pytestmark = pytest.mark.usefixtures("moto_aws")
BAD_ROWS = {101: "not-an-email", 502: "", 903: "ok@x.example"}  # row index -> email


def write_rows(path, n: int = 1000) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "email", "daily_limit"])
        for i in range(n):
            email = BAD_ROWS.get(i, f"c{i}@x.example")
            limit = "-5" if i == 903 else "100"  # row 903: a bad limit
            writer.writerow([f"Customer {i}", email, limit])


def customer_count() -> int:
    client = boto3.client("dynamodb", region_name="us-east-1")
    tables = [t for t in client.list_tables()["TableNames"] if t.endswith("-customers")]
    if not tables:
        return 0
    return sum(
        page["Count"]
        for page in client.get_paginator("scan").paginate(TableName=tables[0], Select="COUNT")
    )


def test_bulk_create_1000_rows_with_3_bad(tmp_path):
    source = tmp_path / "customers.csv"
    write_rows(source)
    tokens = tmp_path / "tokens.csv"

    dry = run("create", "--from-csv", str(source), "--dry-run", "-o", "json", expect=4)
    report = json.loads(dry.stdout)
    assert report["dry_run"] and report["failed"] == 3 and report["succeeded"] == 997
    assert customer_count() == 0 and not tokens.exists()

    result = run("create", "--from-csv", str(source), "--tokens-file", str(tokens), "-o", "json",
                 expect=4)  # fmt: skip
    report = json.loads(result.stdout)
    assert report["succeeded"] == 997 and report["failed"] == 3
    bad = [r for r in report["results"] if r["result"] == "error"]
    assert [r["row"] for r in bad] == [103, 504, 905]  # file lines (the header is line 1)
    assert all(r["error"] for r in bad)
    assert customer_count() == 997
    assert stat.S_IMODE(os.stat(tokens).st_mode) == 0o600
    written = list(csv.DictReader(io.StringIO(tokens.read_text())))
    assert len(written) == 997 and all(r["token"].startswith("bbk_") for r in written)
    for row in written[:3]:
        assert row["token"] not in result.stdout and row["token"] not in result.stderr
    assert "997 of 1000" in result.stderr
    audit = run_json("audit", "--action", "customer.bulk_create")["records"]
    assert len(audit) == 1 and len(audit[0]["after"]["created"]) == 997
    assert run_json("audit", "verify")["ok"] is True

    # The tokens file is never overwritten.
    again = run("create", "--from-csv", str(source), "--tokens-file", str(tokens), expect=2)
    assert "already exists" in again.stderr and customer_count() == 997


def test_bulk_create_needs_a_tokens_file_and_not_name(tmp_path):
    source = tmp_path / "c.csv"
    write_rows(source, 2)
    assert "--tokens-file" in run("create", "--from-csv", str(source), expect=2).stderr
    mixed = run("create", "--from-csv", str(source), "--name", "x", "--tokens-file", "t", expect=2)
    assert mixed.stderr.startswith("Error: ")
    broken = tmp_path / "broken.csv"
    broken.write_text("nom,courriel\nA,a@x.example\n")
    assert "lacks column 'name'" in run("create", "--from-csv", str(broken), expect=2).stderr
    assert customer_count() == 0


def test_bulk_update_limits_with_a_dry_run(tmp_path):
    ids = [
        run_json("create", "--name", f"C{i}", "--email", f"c{i}@x.example")["customer_id"]
        for i in range(3)
    ]
    source = tmp_path / "limits.csv"
    source.write_text(
        "customer_id,daily_limit,allowed_cidrs\n"
        f"{ids[0]},10,10.0.0.0/8\n"
        f"{ids[1]},lots,\n"
        f"{ids[2]},30,\n"
        "00000000-0000-4000-8000-000000000000,5,\n"
    )
    dry = json.loads(
        run("update-limits", "--from-csv", str(source), "--dry-run", "-o", "json", expect=4).stdout
    )
    assert [r["result"] for r in dry["results"]] == ["would update", "error", "would update",
                                                     "error"]  # fmt: skip
    assert run_json("show", ids[0])["limits"]["daily_request_limit"] is None
    done = json.loads(
        run("update-limits", "--from-csv", str(source), "-o", "json", expect=4).stdout
    )
    assert done["succeeded"] == 2 and done["failed"] == 2
    assert run_json("show", ids[0])["limits"]["allowed_cidrs"] == ["10.0.0.0/8"]
    assert run_json("show", ids[1])["limits"]["daily_request_limit"] is None
    assert run_json("show", ids[2])["limits"]["daily_request_limit"] == 30
