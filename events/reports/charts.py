"""Charts as SVG written on the server: no script, no inline style (the CSP allows neither),
colours from classes in app.css.

Each chart is an image with an accessible name (<title>, <desc>, role="img") and every bar
carries its number as text, so nothing depends on colour; the page puts a data table with a
caption beside each one. The drawing is 360 units wide, about a phone's width, so its text
stays readable at 390 px and it scales up on a desktop.

Every text is escaped as it is written into its <text> (the frame by Markup.format): an
offering's title cannot break out of it.
"""

from __future__ import annotations

from markupsafe import Markup, escape

from events.reports.report import ChartRow, FigureValue

WIDTH = 360
ROW_HEIGHT = 42
LABEL_CHARS = 44


def _short(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _frame(chart_id: str, title: str, description: str, height: int, body: list[str]) -> Markup:
    head = Markup(
        '<svg class="chart" id="{id}" role="img" viewBox="0 0 {width} {height}" width="100%" '
        'preserveAspectRatio="xMinYMin meet" aria-labelledby="{id}-title" aria-describedby="{id}-desc" '
        'xmlns="http://www.w3.org/2000/svg"><title id="{id}-title">{title}</title>'
        '<desc id="{id}-desc">{description}</desc>'
    ).format(id=chart_id, width=WIDTH, height=height, title=title, description=description)
    return head + Markup("".join(body)) + Markup("</svg>")  # noqa: S704 - each piece escaped its text


# The pieces are plain strings with only the text escaped (classes and anchors are ours,
# numbers are formatted): a Markup.format per piece cost about 1.5 ms for ten years' 120 bars.
def _text(css: str, x: float, y: float, text: str, anchor: str = "start") -> str:
    return f'<text class="{css}" x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}">{escape(text)}</text>'


def _rect(css: str, x: float, y: float, width: float, height: float) -> str:
    return f'<rect class="{css}" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" rx="2"/>'


def _line(css: str, x1: float, y1: float, x2: float, y2: float) -> str:
    return f'<line class="{css}" x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}"/>'


def bar_chart(
    chart_id: str, title: str, description: str, rows: list[ChartRow], scale_max: float | None = None
) -> Markup:
    """Horizontal bars: each row's label on a line of its own, the bar under it, its number
    at the bar's end. scale_max: the value of a full-width bar (100 for a percentage)."""
    if not rows:
        empty = "Nothing to show for these dates."
        return _frame(chart_id, title, empty, 40, [_text("chart-empty", 0, 24, empty)])
    top = scale_max or max(row.value for row in rows) or 1
    plot = WIDTH - 110  # room for the number after the longest bar
    body = []
    for n, row in enumerate(rows):
        y = n * ROW_HEIGHT
        length = max(min(row.value / top, 1.0) * plot, 0)
        body.append(_text("chart-label", 0, y + 14, _short(row.label)))
        body.append(_rect("chart-track", 0, y + 20, plot, 14))
        if length:
            body.append(_rect("chart-bar", 0, y + 20, length, 14))
        body.append(_text("chart-value", plot + 6, y + 32, row.bar_text))
    return _frame(chart_id, title, description, len(rows) * ROW_HEIGHT + 4, body)


def column_chart(chart_id: str, title: str, description: str, rows: list[ChartRow]) -> Markup:
    """Columns over time, the first, middle and last labelled under the axis, the highest
    value marked on a grid line; the exact numbers are in the table beside it."""
    if not rows:
        return bar_chart(chart_id, title, description, rows)
    height, left, bottom, top_pad = 200, 34, 160, 18
    right = WIDTH - 4
    peak = max(row.value for row in rows) or 1
    step = (right - left) / len(rows)
    gap = min(step * 0.2, 4)
    body = [
        _line("chart-axis", left, bottom, right, bottom),
        _line("chart-grid", left, top_pad, right, top_pad),
        _text("chart-tick", left - 4, top_pad + 4, f"{peak:,.0f}", "end"),
        _text("chart-tick", left - 4, bottom, "0", "end"),
    ]
    for n, row in enumerate(rows):
        x = left + n * step + gap / 2
        bar_height = row.value / peak * (bottom - top_pad)
        body.append(_rect("chart-bar", x, bottom - bar_height, max(step - gap, 1), bar_height))
        if len(rows) <= 8:
            body.append(
                _text("chart-value", x + (step - gap) / 2, bottom - bar_height - 3, row.text, "middle")
            )
    last = len(rows) - 1
    for n in sorted({0, len(rows) // 2, last}):
        if last and n == 0:
            x, anchor = left, "start"
        elif last and n == last:
            x, anchor = right, "end"
        else:
            x, anchor = left + n * step + step / 2, "middle"
        body.append(_text("chart-tick", x, bottom + 18, _short(rows[n].label, 16), anchor))
    return _frame(chart_id, title, description, height, body)


def table_cells(values: list[FigureValue]) -> Markup:
    """A breakdown row's cells, <td> each: ten years by month are 120 rows of 21 figures, and
    the template's loop over 2,520 cells cost more than writing them here.

    The row's texts are escaped together, joined by a tab that then becomes the cells' edges
    (a formatted figure holds no tab; one that did would only split its cell): one escape a
    row, not one a cell."""
    if not values:
        return Markup("")
    texts = str(escape("\t".join([item.text for item in values])))
    return Markup("<td>" + texts.replace("\t", "</td><td>") + "</td>")  # noqa: S704 - the texts escaped
