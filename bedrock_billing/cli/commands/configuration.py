"""``config show``: each resolved setting and where it came from (as ``aws configure list``)."""

from __future__ import annotations

import typer

from ..app import app
from ..render import emit, print_table

config_app = typer.Typer(help="The resolved configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

SETTING_COLUMNS = [("name", "Name"), ("value", "Value"), ("source", "Source")]


@config_app.command("show")
def show(ctx: typer.Context) -> None:
    """Print each resolved setting, its value and its source (flag, variable, config file,
    default), and the endpoint each AWS service is reached at. No AWS call."""
    from ...services.installation import settings_report

    report = settings_report(ctx.obj)

    def tables() -> None:
        print_table(report, rows_key="settings", columns=SETTING_COLUMNS,
                    title=f"Configuration (file: {report['config_file']})")  # fmt: skip
        print_table(report, rows_key="endpoints", title="Endpoints",
                    columns=[("service", "Service"), ("endpoint_url", "Endpoint")])  # fmt: skip

    emit(ctx.obj, report, rows_key="settings", columns=SETTING_COLUMNS, table=tables)
