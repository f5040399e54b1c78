"""The charts and the breakdown's cells are written as strings with their text escaped by
hand (events/reports/charts.py): a title cannot break out of its <text> or <td>."""

from __future__ import annotations

from markupsafe import Markup

from events.reports import charts
from events.reports.figures import FIGURES, Ratio
from events.reports.report import ChartRow, FigureValue

HOSTILE = '</text><script>alert("x")</script> & <b>'


def test_a_bar_chart_escapes_every_label_and_number():
    svg = charts.bar_chart("c", "Fill <rate>", "Share & more", [ChartRow(HOSTILE, 50, "50% (1 of 2)")], 100)
    assert isinstance(svg, Markup)
    assert "<script>" not in svg and "<b>" not in svg
    assert "&lt;/text&gt;&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;" in svg
    assert '<title id="c-title">Fill &lt;rate&gt;</title>' in svg and "Share &amp; more" in svg
    # Half of the plot's 250 units, the number at the bar's end.
    assert '<rect class="chart-bar" x="0.0" y="20.0" width="125.0" height="14.0" rx="2"/>' in svg
    assert ">50%</text>" in svg


def test_a_column_chart_escapes_its_tick_labels_and_draws_a_bar_per_row():
    rows = [ChartRow(f"<m{n}>", n, str(n)) for n in range(1, 121)]
    svg = charts.column_chart("t", "Visits", "Over time", rows)
    assert svg.count('<rect class="chart-bar"') == 120
    assert "<m1>" not in svg and "&lt;m1&gt;" in svg and "&lt;m120&gt;" in svg
    assert svg.endswith("</svg>")


def test_table_cells_are_one_escaped_td_per_figure():
    values = [
        FigureValue(FIGURES["sessions_held"], 1234),
        FigureValue(FIGURES["fill_rate_at_start"], Ratio(3, 4)),
        FigureValue(FIGURES["sessions_held"], HOSTILE),
    ]
    cells = charts.table_cells(values)
    assert isinstance(cells, Markup)
    assert cells.startswith("<td>1,234</td><td>75% (3 of 4)</td><td>&lt;/text&gt;")
    assert "<script>" not in cells and cells.count("<td>") == 3
    assert cells.endswith("&amp; &lt;b&gt;</td>") and cells.count("</td>") == 3
    assert charts.table_cells([]) == ""
    assert charts.table_cells(values[:1]) == "<td>1,234</td>"
