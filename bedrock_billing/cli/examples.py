"""Examples each command's ``--help`` ends with (command path -> argument lines)."""

from __future__ import annotations

EXAMPLES: dict[str, tuple[str, ...]] = {
    "init": ("init --stage prod --region eu-west-1",),
    "create": (
        'create --name "Acme Corp" --email billing@acme.example --daily-limit 1000',
        "create --name Acme --email ops@acme.example --plan pro --expires-in 90d -o json",
    ),
    "list": (
        "list --status active",
        "list --max-items 50 -o json",
        "list --max-items 50 --starting-token TOKEN",
    ),
    "show": ("show 3f2a9c1e", "show --customer-id 3f2a9c1e-0000-4000-8000-000000000000 -o json"),
    "update": ("update --customer-id 3f2a9c1e --plan enterprise",),
    "suspend": ("suspend --customer-id 3f2a9c1e",),
    "reactivate": ("reactivate --customer-id 3f2a9c1e",),
    "update-token": ("update-token --customer-id 3f2a9c1e --grace-period 1h",),
    "revoke-token": ("revoke-token --customer-id 3f2a9c1e --previous-only",),
    "update-limits": (
        "update-limits --customer-id 3f2a9c1e --daily-limit 5000 --monthly-budget 500.00",
        "update-limits --customer-id 3f2a9c1e --requests-per-minute unlimited",
    ),
    "usage": (
        "usage --customer-id 3f2a9c1e --period 2026-05",
        "usage --all --group-by model --source athena -o csv",
    ),
    "reconcile": (
        "reconcile --period 2026-05",
        "reconcile --repair --day 2026-05-14 --yes",
        "reconcile --against invocation-logs --period 2026-05",
        "reconcile --against invocation-logs --period 2026-05 --repair --yes",
        "reconcile --against cur --period 2026-05 --cur-table cur_db.bedrock_cur",
    ),
    "invoice": (
        "invoice --all --period 2026-05",
        "invoice --all --finalize --format html --out invoices/",
    ),
    "void-invoice": (
        'void-invoice --customer-id 3f2a9c1e --period 2026-05 --reason "wrong plan"',
    ),
    "quote": ("quote --plan pro --model anthropic.claude-3-haiku-20240307-v1:0 --requests 1000",),
    "credits add": ("credits add --customer-id 3f2a9c1e --amount 100.00 --expires 2026-12-31",),
    "credits list": ("credits list --customer-id 3f2a9c1e -o json",),
    "prices export": ("prices export --plan pro --out prices.json",),
    "alerts set": (
        "alerts set --customer-id 3f2a9c1e --threshold 80 --threshold 100",
        "alerts set --customer-id 3f2a9c1e --credits-below 25.00",
    ),
    "alerts list": ("alerts list", "alerts list --customer-id 3f2a9c1e -o json"),
    "alerts clear": ("alerts clear --customer-id 3f2a9c1e",),
    "alerts daily": ("alerts daily --within 7 -o json",),
    "webhooks set": (
        "webhooks set --customer-id 3f2a9c1e --url https://hooks.example.com/bb -o json",
    ),
    "webhooks deliveries": ("webhooks deliveries --failed", "webhooks deliveries -o csv"),
    "webhooks redeliver": ("webhooks redeliver evt_5f0c2d9a8e7b4c1d9f3a6b2e4c8d0a1f",),
    "anomalies": ("anomalies", "anomalies --period 2026-05 --notify -o json"),
    "deploy": (
        "deploy --model anthropic.claude-3-haiku-20240307-v1:0 --yes",
        "deploy --dry-run",
        "deploy --preview",
        "deploy --template-out stack.json",
    ),
    "status": ("status --stage prod -o json",),
    "destroy": ("destroy --stage dev --yes",),
    "sandbox": ("sandbox --port 0 --output json",),
    "demo": ("demo", "demo -o json"),
    "console": ("console", "console --port 0 -o json", "console --stage dev --profile billing"),
    "config show": ("config show", "config show --stage dev -o json"),
}
