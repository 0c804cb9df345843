"""Charts drawn on the server as inline SVG: nothing to load, nothing for the page's
Content-Security-Policy to allow (colours are presentation attributes, not ``style``).

Each chart is an image with a text alternative; the page shows the same numbers in a table
next to it, so no one needs the picture to read them.
"""

from __future__ import annotations

from html import escape

# Colour-blind-safe (Okabe-Ito), each at least 3:1 against white.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
WIDTH, HEIGHT = 640, 220
LEFT, BOTTOM, TOP = 44, 24, 10


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _nice_max(value: int) -> int:
    if value <= 5:
        return 5
    step = 10 ** (len(str(value)) - 1)
    return -(-value // step) * step


def stacked_bars(days: list[str], series: dict[str, list[int]], label: str) -> str:
    """Requests per day, one bar per day stacked by model, as an SVG string."""
    models = list(series)
    totals = [sum(series[m][i] for m in models) for i in range(len(days))]
    top = _nice_max(max(totals, default=0))
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    slot = plot_w / max(len(days), 1)
    bar = max(slot * 0.7, 1.0)
    total = sum(totals)
    alt = f"{label}: {total} request(s) over {len(days)} day(s)"
    out = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(alt)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(alt)}</title>",
    ]
    for tick in (0, top // 2, top):
        y = TOP + plot_h - plot_h * tick / top
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}" '
                   'stroke="#cccccc" stroke-width="1"/>')  # fmt: skip
        out.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
                   f'fill="#333333">{tick}</text>')  # fmt: skip
    for i, day in enumerate(days):
        x = LEFT + i * slot + (slot - bar) / 2
        y = TOP + plot_h
        for index, model in enumerate(models):
            value = series[model][i]
            if not value:
                continue
            h = plot_h * value / top
            y -= h
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{colour(index)}"><title>{escape(day)} {escape(model)}: {value}</title>'
                "</rect>"
            )
        if len(days) <= 12 or i % 5 == 0 or i == len(days) - 1:
            out.append(f'<text x="{x + bar / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle" '
                       f'font-size="10" fill="#333333">{escape(day[-2:])}</text>')  # fmt: skip
    out.append("</svg>")
    return "".join(out)
