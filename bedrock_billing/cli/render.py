"""The one renderer: table (Rich), JSON and CSV from the same payload. No command module
tests the output format or builds a Rich table: they hand this module a payload.

Data goes to stdout; progress, warnings and summaries to stderr. ``--output json`` prints
one JSON object; ``--output csv`` prints the rows only; ``table`` is the default.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

Column = tuple[str, str]  # (dotted key into the row, header)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def to_json(payload: Any) -> str:
    return json.dumps(payload, indent=2, default=_json_default, ensure_ascii=False)


def _get(row: dict[str, Any], dotted: str) -> Any:
    value: Any = row
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict):  # a settings map (model parameters): key=value, not a repr
        return ", ".join(f"{k}={_cell(v)}" for k, v in value.items())
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


PIPE_WIDTH = 160
"""Table width when stdout is not a terminal (cron mail, a log, `| less`) and COLUMNS is
unset: Rich's 80 would fold ids and model names into unreadable slivers."""


def stdout_console():
    import os

    from rich.console import Console

    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else PIPE_WIDTH
    return Console(soft_wrap=False, highlight=False, width=width)


def stderr_console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def emit(
    settings,
    payload: dict[str, Any],
    *,
    rows_key: str | None = None,
    columns: Sequence[Column] = (),
    title: str | None = None,
    footer: str | None = None,
    table: Callable[[], None] | None = None,
    csv_key: str | None = None,
    csv_columns: Sequence[Column] | None = None,
) -> None:
    """Render ``payload``. With ``rows_key``, ``payload[rows_key]`` is a list of rows shown
    as a table (and the only thing CSV prints); otherwise the payload is one record.

    ``table`` draws the people's view itself (several tables, a chart); ``csv_key`` and
    ``csv_columns`` choose other rows or columns for CSV than the table shows."""
    fmt = getattr(settings, "output", "table")
    if fmt == "json":
        sys.stdout.write(to_json(payload) + "\n")
        return
    if fmt == "csv":
        key = csv_key or rows_key
        write_csv(payload.get(key) or [] if key else [payload], csv_columns or columns)
        return
    if table is not None:
        table()
        return
    print_table(payload, rows_key=rows_key, columns=columns, title=title, footer=footer)


def emit_export(settings, doc: dict[str, Any], rows: Sequence[dict[str, Any]],
                columns: Sequence[Column], *, out: str | None = None) -> None:
    """A document other programs read (the proxy's price JSON): JSON to ``out`` or stdout,
    whatever the output format, except that ``--output csv`` prints its rows."""
    if out:
        from pathlib import Path

        Path(out).write_text(to_json(doc) + "\n", encoding="utf-8")
    elif getattr(settings, "output", "table") == "csv":
        write_csv(rows, columns)
    else:
        sys.stdout.write(to_json(doc) + "\n")


def emit_line(settings, payload: dict[str, Any], human: Callable[[], None]) -> None:
    """A long-running command's one JSON line on stdout, flushed at once so a script can
    read it while the command runs (``sandbox --output json``); else ``human()``."""
    if getattr(settings, "output", "table") == "json":
        sys.stdout.write(json.dumps(payload, separators=(",", ":"), default=_json_default) + "\n")
        sys.stdout.flush()
    else:
        human()


def write_csv(rows: Sequence[dict[str, Any]], columns: Sequence[Column] = ()) -> None:
    cols = list(columns) or [(k, k) for k in (rows[0].keys() if rows else [])]
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow([key for key, _ in cols])
    for row in rows:
        writer.writerow(["" if _get(row, k) is None else _plain(_get(row, k)) for k, _ in cols])


def print_table(
    payload: dict[str, Any],
    *,
    rows_key: str | None = None,
    columns: Sequence[Column] = (),
    title: str | None = None,
    footer: str | None = None,
    console=None,
) -> None:
    """A Rich table of ``payload[rows_key]`` (or a two-column record) on stdout. Values are
    plain text: a ``[prod]`` in a value is shown, never read as Rich markup."""
    from rich.table import Table
    from rich.text import Text

    rows = payload.get(rows_key, []) if rows_key else [payload]
    console = console or stdout_console()
    if rows_key is None:
        table = Table(title=title, show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column()
        for key, header in columns or [(k, k) for k in payload]:
            table.add_row(header, Text(_cell(_get(payload, key))))
    else:
        table = Table(title=title)
        for key, header in columns:
            justify = "right" if rows and isinstance(_get(rows[0], key), int | Decimal) else "left"
            table.add_column(header, justify=justify, overflow="fold")
        for row in rows:
            table.add_row(*(Text(_cell(_get(row, key))) for key, _ in columns))
    console.print(table)
    if footer:
        console.print(footer)


def _plain(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def note(message: str) -> None:
    """A human message on stderr (never data)."""
    stderr_console().print(message, markup=False, soft_wrap=True)


def for_people(settings, draw: Callable[[], None]) -> None:
    """Draw something only a person reads (a preview before a prompt): not for JSON or CSV."""
    if getattr(settings, "output", "table") == "table":
        draw()


def hint(settings, message: str) -> None:
    """A note for a person reading a table; scripts asking for JSON or CSV do not need it."""
    if getattr(settings, "output", "table") == "table":
        note(message)


def invoice_table(doc: dict, lines: Sequence[dict], totals: Sequence[tuple[str, str]]) -> None:
    """One invoice or quote as a table: its lines, then its totals in bold."""
    from rich.table import Table

    if doc["status"] == "quote":
        title = f"Quote · {doc['period']} · plan {doc['plan']}"
    else:
        who = doc.get("customer_name") or doc["customer_id"]
        title = f"{doc['invoice_number']} · {who} · {doc['period']} · plan {doc['plan']}"
        title += f" · {doc['status']}"
    table = Table(title=title)
    for header in ("Item", "Quantity", "Unit price", "Amount"):
        table.add_column(header, justify="left" if header == "Item" else "right")
    for line in lines:
        qty = line.get("quantity")
        table.add_row(
            line["description"],
            f"{qty:,}" if isinstance(qty, int) else "",
            line.get("unit_price") or "",
            line["amount"],
        )
    for label, amount in totals:
        table.add_row(f"[bold]{label}[/bold]", "", "", f"[bold]{amount}[/bold]")
    stdout_console().print(table)


def error_line(message: str) -> None:
    sys.stderr.write(f"Error: {message}\n")


class ProgressBar:
    """A Rich progress bar on stderr, fed by a service's ``progress(done, total, message)``
    callback (``total`` None shows a spinner). Context manager; transient."""

    def __init__(self, label: str):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=stderr_console(),
            transient=True,
        )
        self._label = label
        self._progress.start()
        self._task = self._progress.add_task(label, total=None)

    def update(self, done: int, total: int | None = None, message: str | None = None) -> None:
        description = f"{self._label}: {message}" if message else self._label
        self._progress.update(self._task, completed=done, total=total, description=description)

    def close(self) -> None:
        self._progress.stop()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextmanager
def progress(label: str, show: bool = True) -> Iterator[Callable[..., None] | None]:
    """A service's progress callback: a bar on stderr when ``show`` and stderr is a
    terminal, else None (nothing drawn into a pipe or a cron mail)."""
    if not (show and sys.stderr.isatty()):
        yield None
        return
    bar = ProgressBar(label)
    try:
        yield bar.update
    finally:
        bar.close()


def bar_chart(series: Sequence[tuple[str, int]], width: int = 40) -> str:
    """A small horizontal bar chart: one line per label, bars scaled to the largest value."""
    if not series:
        return ""
    peak = max(value for _, value in series) or 1
    label_width = max(len(label) for label, _ in series)
    lines = []
    for label, value in series:
        cells = value * width / peak
        full = int(cells)
        bar = "█" * full + ("▌" if cells - full >= 0.5 else "")
        lines.append(f"{label.rjust(label_width)} │{bar} {value:,}")
    return "\n".join(lines)


def svg_bar_chart(series: Sequence[tuple[str, Any]], title: str, width: int = 640) -> str:
    """A horizontal bar chart as a standalone SVG document (labels and values escaped):
    bars to the right of the axis for positive values, to the left for negative ones."""
    from html import escape

    row, label_w, pad = 22, 220, 8
    values = [float(v) for _, v in series] or [0.0]
    low, high = min(0.0, *values), max(0.0, *values)
    span = (high - low) or 1.0
    plot = width - label_w - 2 * pad - 80
    zero = label_w + pad + plot * (-low / span)
    height = 40 + row * len(series)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<text x="{pad}" y="20" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{zero:.1f}" y1="28" x2="{zero:.1f}" y2="{height - 4}" stroke="#888"/>',
    ]
    for i, (label, value) in enumerate(series):
        y = 32 + i * row
        size = plot * abs(float(value)) / span
        x = zero if float(value) >= 0 else zero - size
        colour = "#2e7d32" if float(value) >= 0 else "#c62828"
        out.append(f'<text x="{pad}" y="{y + 14}">{escape(str(label))[:34]}</text>')
        out.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{size:.1f}" height="{row - 8}" '
                   f'fill="{colour}"/>')  # fmt: skip
        out.append(f'<text x="{zero + (size if float(value) >= 0 else 0) + 4:.1f}" '
                   f'y="{y + 14}">{escape(str(value))}</text>')  # fmt: skip
    out.append("</svg>")
    return "\n".join(out) + "\n"
