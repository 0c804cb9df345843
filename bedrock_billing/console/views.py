"""The console's pages: each view reads the request, calls the service function the CLI
command of the same job calls (``services/*``), and renders a template. No rule lives here:
validation, limits, the settling window and the token rules are the services'.

Every state change is a POST (the guard has checked its CSRF token) answered by a redirect
to a page that says what was done, except the two that show a new token: those answer
with the page itself (never cached), as the token cannot be shown again.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from markupsafe import Markup

from ..core.errors import BillingError, InvalidInput, NotFound
from ..core.timeutil import Period
from ..services import customers as customer_svc
from ..services import invoices as invoice_svc
from ..services import overview
from .answers import Response
from .charts import colour, stacked_bars

CID = r"(?P<cid>[0-9a-fA-F-]{1,36})"
PERIOD = r"(?P<period>[0-9]{4}-[0-9]{2})"
STATIC_DIR = Path(__file__).parent / "static"

DONE = {
    "limits": "Limits saved.",
    "suspend": "Customer suspended: the proxy refuses its tokens.",
    "reactivate": "Customer reactivated.",
    "revoke": "Tokens revoked: the proxy refuses them within its auth cache time.",
    "revoke-previous": "The previous token is revoked.",
    "credit": "Credit granted.",
    "finalize": "Invoice issued.",
    "void": "Invoice voided by a credit note.",
    "none": "Nothing to issue: the customer has no usage in that period.",
}
# Confirmation pages: the question, the button, and what the action does.
CUSTOMER_ACTIONS = {
    "suspend": ("Suspend this customer?", "Suspend",
                "The proxy refuses its tokens until you reactivate it."),
    "reactivate": ("Reactivate this customer?", "Reactivate",
                   "The proxy accepts its tokens again."),
    "rotate": ("Rotate this customer's token?", "Rotate token",
               "A new token is shown once; the current one keeps working for the grace period."),
    "revoke": ("Revoke every token of this customer?", "Revoke tokens",
               "The proxy refuses them within its auth cache time; rotate to issue a new one."),
    "revoke-previous": ("Revoke the previous token now?", "Revoke previous token",
                        "The token still in its grace period stops working."),
}  # fmt: skip
CREATE_FIELDS = ("name", "email", "plan", "daily_limit", "expires_in")
LIMIT_FIELDS = (
    ("daily_request_limit", "Requests per UTC day"),
    ("monthly_token_limit", "Tokens per UTC month"),
    ("requests_per_minute", "Requests per minute"),
    ("monthly_budget", "Monthly budget (estimated spend)"),
    ("allowed_models", "Allowed models (comma-separated; empty = all)"),
)


def _page(request) -> int:
    try:
        return max(1, int(request.arg("page", "1")))
    except ValueError:
        raise InvalidInput("page must be a whole number") from None


def home(app, request):
    return Response.redirect("/customers")


def customers(app, request):
    status = request.arg("status") or None
    plan = request.arg("plan") or None
    search = request.arg("q") or ""
    sort = request.arg("sort", "name")
    descending = request.arg("dir") == "desc"
    table = overview.customer_table(
        app.settings, search=search, status=status, plan=plan, sort=sort,
        descending=descending, page=_page(request), clock=app.clock,
    )  # fmt: skip
    params = {"q": search, "status": status or "", "plan": plan or "", "sort": sort,
              "dir": "desc" if descending else "asc"}  # fmt: skip
    return app.render(request, "customers.html", table=table, params=params,
                      sort_keys=overview.SORT_KEYS)  # fmt: skip


def new_customer(app, request):
    return app.render(request, "new_customer.html", values=dict.fromkeys(CREATE_FIELDS, ""),
                      error=None)  # fmt: skip


def create(app, request):
    values = {k: (request.field(k) or "").strip() for k in CREATE_FIELDS}
    try:
        made = customer_svc.create_customer(
            app.settings, name=values["name"], email=values["email"],
            plan=values["plan"] or None, daily_limit=values["daily_limit"] or None,
            expires_in=values["expires_in"] or None, clock=app.clock,
        )  # fmt: skip
    except InvalidInput as exc:
        return app.render(request, "new_customer.html", 400, values=values, error=exc.message)
    return app.render(request, "token.html", 201, title="Customer created", customer=made,
                      token=made["token"], prefix=made["token_prefix"])  # fmt: skip


def customer(app, request, cid, limits_error=None, limits_values=None, status=200):
    detail = customer_svc.show_customer(app.settings, cid, clock=app.clock)
    cid = detail["customer_id"]
    period = request.arg("period") or None
    usage = overview.customer_usage(app.settings, cid, period=period, clock=app.clock)
    credits = invoice_svc.list_credits(app.settings, cid, clock=app.clock)
    invoices = overview.customer_invoices(app.settings, cid)
    limits = detail["limits"]
    if limits_values is None:
        limits_values = {
            k: ", ".join(limits[k]) if k == "allowed_models" and limits[k] else
            ("" if limits[k] is None else str(limits[k]))
            for k, _ in LIMIT_FIELDS
        }  # fmt: skip
    charts = {
        key: Markup(stacked_bars(usage[key]["days"], usage[key]["requests_by_model"],
                                 f"Requests per day, {usage[name]}"))  # fmt: skip
        for key, name in (("current", "period"), ("previous", "previous_period"))
    }
    models = sorted(set(usage["current"]["requests_by_model"])
                    | set(usage["previous"]["requests_by_model"]))  # fmt: skip
    return app.render(
        request, "customer.html", status, c=detail, usage=usage, charts=charts, models=models,
        credits=credits, invoices=invoices, limit_fields=LIMIT_FIELDS,
        limits_values=limits_values, limits_error=limits_error,
        done=DONE.get(request.arg("done") or ""),
        this_period=str(Period.of(app.clock())),
    )  # fmt: skip


def limits(app, request, cid):
    values = {k: (request.field(k) or "").strip() for k, _ in LIMIT_FIELDS}
    given = {k: (v or "unlimited") for k, v in values.items()}
    given["allowed_models"] = values["allowed_models"] or "all"
    try:
        customer_svc.update_limits(app.settings, cid, clock=app.clock, **given)
    except InvalidInput as exc:
        return customer(app, request, cid, limits_error=exc.message, limits_values=values,
                        status=400)  # fmt: skip
    return Response.redirect(f"/customers/{cid}", done="limits")


def add_credit(app, request, cid):
    invoice_svc.add_credit(
        app.settings, cid, amount=(request.field("amount") or "").strip(),
        expires=(request.field("expires") or "").strip() or None,
        note=(request.field("note") or "").strip() or None, clock=app.clock,
    )  # fmt: skip
    return Response.redirect(f"/customers/{cid}", done="credit")


def confirm(app, request, cid, action):
    if action not in CUSTOMER_ACTIONS:
        raise NotFound("no such action")
    detail = customer_svc.show_customer(app.settings, cid, clock=app.clock)
    question, button, explain = CUSTOMER_ACTIONS[action]
    return app.render(request, "confirm.html", c=detail, action=action, question=question,
                      button=button, explain=explain,
                      target=f"/customers/{detail['customer_id']}/{action}")  # fmt: skip


def act(app, request, cid, action):
    settings = app.settings
    if action == "rotate":
        rotated = customer_svc.rotate_token(
            settings, cid, grace_period=(request.field("grace_period") or "24h").strip(),
            clock=app.clock,
        )  # fmt: skip
        detail = customer_svc.show_customer(settings, rotated["customer_id"], clock=app.clock)
        return app.render(request, "token.html", title="Token rotated", customer=detail,
                          token=rotated["token"], prefix=rotated["token_prefix"],
                          rotated=rotated)  # fmt: skip
    if action in ("suspend", "reactivate"):
        status = "suspended" if action == "suspend" else "active"
        done = customer_svc.set_status(settings, cid, status, clock=app.clock)
    else:
        done = customer_svc.revoke_token(
            settings, cid, previous_only=action == "revoke-previous", clock=app.clock
        )
    return Response.redirect(f"/customers/{done['customer_id']}", done=action)


def usage(app, request):
    period = request.arg("period") or None
    data = overview.usage_overview(app.settings, period=period, clock=app.clock)
    chart = Markup(stacked_bars(data["chart"]["days"], data["chart"]["requests_by_model"],
                                f"Requests per day, all customers, {data['period']}"))  # fmt: skip
    top = [c["customer_id"] for c in data["top_customers"]]
    names = customer_svc.customer_names(app.settings, top)
    recon = recon_error = None
    if request.arg("reconcile"):
        try:  # the log may be unreachable while the counters are fine: say so in place
            recon = overview.reconcile_status(app.settings, period=data["period"],
                                              clock=app.clock)  # fmt: skip
        except BillingError as exc:
            recon_error = exc.message
    return app.render(request, "usage.html", data=data, chart=chart, names=names, recon=recon,
                      recon_error=recon_error,
                      models=list(data["chart"]["requests_by_model"]))  # fmt: skip


def invoices(app, request):
    data = overview.period_invoices(app.settings, period=request.arg("period"), clock=app.clock)
    return app.render(request, "invoices.html", data=data,
                      done=DONE.get(request.arg("done") or ""))  # fmt: skip


def document(app, request, cid, period):
    """The invoice document: the issued one (a revision by ``?revision=``), else the draft,
    rendered by the same function as ``invoice --format html``."""
    from ..services.invoice_documents import Seller, render_html
    from .answers import DOCUMENT_CSP

    revision = request.arg("revision")
    try:
        wanted = int(revision) if revision else None
    except ValueError:
        raise InvalidInput("revision must be a whole number") from None
    doc = overview.issued_invoice(app.settings, cid, period, wanted)
    if doc is None:
        if wanted is not None:
            raise NotFound(f"no revision {wanted} of the {period} invoice")
        run = invoice_svc.run_invoices(app.settings, period=period, customer_id=cid,
                                       clock=app.clock)  # fmt: skip
        doc = run.invoices[0]
    return Response.html(render_html(doc, Seller.from_settings(app.settings)),
                         csp=DOCUMENT_CSP)  # fmt: skip


def confirm_invoice(app, request, cid, period, action):
    detail = customer_svc.show_customer(app.settings, cid, clock=app.clock)
    chosen = Period.parse(period)
    settles = overview.run_settles(chosen)
    return app.render(request, "confirm_invoice.html", c=detail, period=str(chosen),
                      action=action, settles=settles,
                      target=f"/invoices/{detail['customer_id']}/{chosen}/{action}")  # fmt: skip


def invoice_action(app, request, cid, period, action):
    if action == "finalize":
        run = invoice_svc.run_invoices(
            app.settings, period=period, customer_id=cid, finalize=True,
            force=request.field("force") == "yes", clock=app.clock,
        )  # fmt: skip
        done = run.outcomes[0]["outcome"] if run.outcomes else "none"
        done = "finalize" if done in ("issued", "existing") else "none"
    else:
        invoice_svc.void_invoice(app.settings, cid, period, reason=request.field("reason") or "",
                                 clock=app.clock)  # fmt: skip
        done = "void"
    return Response.redirect("/invoices", period=period, done=done)


def static(app, request, name):
    from .answers import STATIC

    if name not in STATIC:
        raise NotFound("no such file")
    body = (STATIC_DIR / name).read_bytes()
    return Response(200, body, {"Content-Type": STATIC[name], "Cache-Control": "no-cache"})


def favicon(app, request):
    return Response(204)  # browsers ask for one; the console has none


ROUTES = [
    ("GET", r"/", home),
    ("GET", r"/favicon\.ico", favicon),
    ("GET", r"/customers", customers),
    ("POST", r"/customers", create),
    ("GET", r"/customers/new", new_customer),
    ("GET", rf"/customers/{CID}", customer),
    ("POST", rf"/customers/{CID}/limits", limits),
    ("POST", rf"/customers/{CID}/credits", add_credit),
    ("GET", rf"/customers/{CID}/confirm/(?P<action>[a-z-]{{1,20}})", confirm),
    ("POST", rf"/customers/{CID}/(?P<action>suspend|reactivate|rotate|revoke|revoke-previous)",
     act),
    ("GET", r"/usage", usage),
    ("GET", r"/invoices", invoices),
    ("GET", rf"/invoices/{CID}/{PERIOD}", document),
    ("GET", rf"/invoices/{CID}/{PERIOD}/confirm/(?P<action>finalize|void)", confirm_invoice),
    ("POST", rf"/invoices/{CID}/{PERIOD}/(?P<action>finalize|void)", invoice_action),
    ("GET", r"/static/(?P<name>[a-z]{1,20}\.[a-z]{2,3})", static),
]


def _number(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _ratio(used, limit) -> float | None:
    """How much of a limit is used (0..1), or None when unlimited."""
    if limit in (None, "", 0):
        return None
    return min(float(Decimal(str(used)) / Decimal(str(limit))), 1.0)


TEMPLATE_FILTERS = {"number": _number}
TEMPLATE_GLOBALS = {"ratio": _ratio, "colour": colour, "customer_actions": CUSTOMER_ACTIONS}
