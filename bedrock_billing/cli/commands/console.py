"""``console``: the operator's web console on loopback, until Ctrl-C."""

from __future__ import annotations

import typer

from ...core.errors import BillingError
from ..app import app
from ..render import emit_line, note
from .sandbox import serve_until_stopped


@app.command("console")
def console(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="A loopback address only."),
    port: int = typer.Option(8700, "--port", min=0, max=65535, help="Port (0: a free one)."),
) -> None:
    """Serve the web console on loopback until Ctrl-C, acting with these settings (stage,
    profile, region); the printed URL opens it once (-o json: one line with `url`)."""
    from ...console import require_console_dependencies
    from ...sandbox.netutil import loopback_host

    require_console_dependencies()
    from ...console.server import ConsoleServer

    settings = ctx.obj
    bind = loopback_host(host, "the console")
    server = ConsoleServer(settings, bind, port, debug=getattr(settings, "debug", False))
    try:
        server.start()
    except OSError as exc:
        raise BillingError(f"cannot listen on {bind}:{port}: {exc.strerror or exc}") from None
    info = {"url": server.login_url(), "host": bind, "port": server.port,
            "stage": settings.stage, "region": settings.region}  # fmt: skip

    def human() -> None:
        note(
            f"Console for stage {settings.stage} (region {settings.region or 'unset'}) at "
            f"http://{bind}:{server.port}; Ctrl-C stops it.\n"
            f"Open this URL once (it sets a session cookie; it works only once):\n  {info['url']}"
        )

    try:
        serve_until_stopped(lambda: emit_line(settings, info, human))
    finally:
        server.stop()
    note("Console stopped.")
