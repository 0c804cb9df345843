"""Alert thresholds, webhooks and deliveries: the use cases behind ``alerts`` and
``webhooks``. The signing secret is encrypted with KMS before it is stored and shown once."""

from __future__ import annotations

from typing import Any

from ..awsclient import aws_error
from ..core import alerts
from ..core.customers import parse_money_limit
from ..core.errors import AwsError, InvalidInput, NotFound
from ..core.schema import resource_base
from ..core.timeutil import Clock, iso_z, system_clock
from ..core.webhooks import check_url, new_signing_secret
from ..stores.notifications import NotificationStore
from .customers import require_customer


def _store(settings) -> NotificationStore:
    return NotificationStore(settings.client("dynamodb"), settings.tables.usage)


def default_thresholds(settings) -> tuple[int, ...]:
    text = getattr(settings, "alert_thresholds", None)
    return alerts.parse_thresholds(text.split(",")) if text else alerts.DEFAULT_THRESHOLDS


def webhook_key(settings) -> str:
    return settings.webhook_key or alerts.webhook_key_alias(
        resource_base(settings.stage, settings.table_prefix)
    )


def _row(customer_id: str, item: dict, defaults: tuple[int, ...]) -> dict[str, Any]:
    own = item.get("thresholds")
    return {
        "customer_id": customer_id,
        "thresholds": [int(t) for t in own] if own else list(defaults),
        "source": "customer" if own else "default",
        "credits_below": item.get("credits_below"),
        "webhook_url": item.get("webhook_url"),
    }


def set_alerts(
    settings,
    customer_id: str,
    thresholds: list[str] | None = None,
    *,
    credits_below: str | None = None,
    clock: Clock = system_clock,
):
    """Set the customer's thresholds and/or the prepaid balance that triggers credits.low."""
    if not thresholds and credits_below is None:
        raise InvalidInput("give --threshold PCT (repeatable) or --credits-below AMOUNT")
    changes: dict[str, Any] = {"updated_at": iso_z(clock())}
    if thresholds:
        changes["thresholds"] = list(alerts.parse_thresholds(thresholds))
    if credits_below is not None:
        amount = parse_money_limit(credits_below, "--credits-below")
        if amount is None:
            raise InvalidInput("--credits-below needs an amount such as 25.00")
        changes["credits_below"] = amount
    customer_id = require_customer(settings, customer_id)["customer_id"]
    store = _store(settings)
    store.update_settings(customer_id, changes)
    return _row(customer_id, store.settings(customer_id), default_thresholds(settings))


def clear_alerts(settings, customer_id: str, *, clock: Clock = system_clock) -> dict[str, Any]:
    customer_id = require_customer(settings, customer_id)["customer_id"]
    store = _store(settings)
    store.update_settings(
        customer_id, {"updated_at": iso_z(clock())}, remove=("thresholds", "credits_below")
    )
    return _row(customer_id, store.settings(customer_id), default_thresholds(settings))


def list_alerts(settings, customer_id: str | None = None) -> dict[str, Any]:
    store, defaults = _store(settings), default_thresholds(settings)
    if customer_id:
        customer_id = require_customer(settings, customer_id)["customer_id"]
        item = store.settings(customer_id)
        row = _row(customer_id, item, defaults)
        row["fired"] = [m["sk"][len(alerts.ALERT_PREFIX) :] for m in store.fired(customer_id)]
        return {"alerts": [row], "count": 1, "default_thresholds": list(defaults)}
    rows = [_row(i["customer_id"], i, defaults) for i in store.all_settings()]
    rows.sort(key=lambda r: r["customer_id"])
    return {"alerts": rows, "count": len(rows), "default_thresholds": list(defaults)}


def set_webhook(
    settings,
    customer_id: str,
    url: str,
    *,
    allow_private_url: bool = False,
    clock: Clock = system_clock,
) -> dict[str, Any]:
    """Store the URL and a new signing secret (KMS-encrypted); the secret is returned once."""
    check_url(url, allow_private_url)
    customer_id = require_customer(settings, customer_id)["customer_id"]
    secret = new_signing_secret()
    try:
        blob = settings.client("kms").encrypt(
            KeyId=webhook_key(settings),
            Plaintext=secret.encode(),
            EncryptionContext={"customer_id": customer_id},
        )["CiphertextBlob"]
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code == "NotFoundException":  # a stage made by `init`, never deployed
            raise AwsError(
                f"the webhook signing key {webhook_key(settings)} does not exist: deploy "
                f"stage {settings.stage} first (the stack creates it; so does the sandbox)"
            ) from None
        raise (aws_error(exc, webhook_key(settings)) or exc) from None
    _store(settings).update_settings(
        customer_id,
        {
            "webhook_url": url,
            "secret_ciphertext": bytes(blob),
            "allow_private_url": bool(allow_private_url),
            "updated_at": iso_z(clock()),
        },
    )
    return {"customer_id": customer_id, "url": url, "signing_secret": secret}


def list_deliveries(
    settings, *, customer_id: str | None = None, failed: bool = False
) -> dict[str, Any]:
    if customer_id:
        customer_id = require_customer(settings, customer_id)["customer_id"]
    status = alerts.FAILED if failed else None
    events = _store(settings).events(customer_id, status)
    rows = [_delivery_row(e) for e in events]
    return {"deliveries": rows, "count": len(rows)}


def _delivery_row(record: dict) -> dict[str, Any]:
    return {
        "event_id": record.get("event_id"),
        "type": record.get("event_type"),
        "customer_id": record.get("customer_id"),
        "created_at": record.get("created_at"),
        "status": record.get("status"),
        "attempts": int(record.get("attempts") or 0),
        "last_status": record.get("last_status"),
        "last_error": record.get("last_error"),
    }


def notifier_for(settings, **overrides):
    """The notifier's engine on the CLI's clients (redeliver; the sandbox's pump)."""
    from ..notifier.engine import Notifier

    return Notifier(
        settings.client("dynamodb"),
        settings.tables.usage,
        settings.tables.customers,
        sns=settings.client("sns") if settings.alerts_topic_arn else None,
        topic_arn=settings.alerts_topic_arn,
        kms=settings.client("kms"),
        default_thresholds=default_thresholds(settings),
        **overrides,
    )


def redeliver(settings, event_id: str, *, notify=None, **overrides) -> dict[str, Any]:
    """Send a kept event again; ``notify`` hears when delivery starts (it may take a while:
    the same retries and backoff as the notifier's)."""
    if not event_id.startswith("evt_"):
        raise InvalidInput(f"{event_id[:40]!r} is not an event id (evt_...)")
    record = _store(settings).find_event(event_id)
    if record is None:
        raise NotFound(f"no event with id {event_id}")
    if notify:
        from ..core.webhooks import MAX_ATTEMPTS

        attempts = overrides.get("max_attempts", MAX_ATTEMPTS)
        notify(f"Delivering {event_id} (up to {attempts} attempts, with backoff)...")
    result = notifier_for(settings, **overrides).redeliver(record["customer_id"], event_id)
    if result is None:  # pragma: no cover - found a moment ago
        raise NotFound(f"no event with id {event_id}")
    return _delivery_row(result)


def announce_invoice(settings, doc: dict[str, Any], notifier=None) -> dict | None:
    """Send ``invoice.finalized`` for an issued invoice (topic and webhook); None where
    there is neither (a stage without alerts, a customer without a webhook)."""
    notifier = notifier or notifier_for(settings)
    if not settings.alerts_topic_arn and not notifier.settings(doc["customer_id"]).get(
        "webhook_url"
    ):
        return None
    data = {
        "invoice_number": doc.get("invoice_number"),
        "period": doc.get("period"),
        "total": doc.get("total"),
        "currency": doc.get("currency"),
        "issued_at": doc.get("issued_at"),
    }
    return notifier.send(alerts.INVOICE_FINALIZED, doc["customer_id"], data)


def run_daily(settings, *, within_days: int = 7, notifier=None) -> dict[str, Any]:
    """What the deployed daily schedule runs: ``token.expiring`` once per token."""
    if not 1 <= within_days <= 90:
        raise InvalidInput("--within must be 1 to 90 days")
    notifier = notifier or notifier_for(settings)
    sent = notifier.expiring_tokens(settings.tables.tokens, within_days)
    return {
        "events": [
            {"event_id": e["id"], "type": e["type"], "customer_id": e["customer_id"], **e["data"]}
            for e in sent
        ],
        "count": len(sent),
    }


def check_credits_low(
    settings, customer_id: str, period: str, balance: str, notifier=None
) -> dict | None:
    """``credits.low`` once per period when the usable prepaid ``balance`` (the invoices
    service reads it: this module imports no other service) is below the customer's
    ``credits_below`` (checked after an invoice draws credit)."""
    from decimal import Decimal

    notifier = notifier or notifier_for(settings)
    own = notifier.settings(customer_id)
    if own.get("credits_below") is None:
        return None
    if Decimal(balance) >= Decimal(str(own["credits_below"])):
        return None
    event = alerts.make_event(
        alerts.CREDITS_LOW,
        customer_id,
        {"usable_balance": balance, "below": own["credits_below"], "period": period},
        notifier.clock(),
    )
    marker = f"{alerts.ALERT_PREFIX}{period}#credits_low"
    return notifier.fire_once(customer_id, marker, event, own)
