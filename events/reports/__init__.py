"""Reports: is the programme working? Figures (one function each, figures.py) over rows read
in a fixed number of queries (facts.py), assembled per range and breakdown (report.py), drawn
as SVG (charts.py) and exported as CSV and JSON (exports.py)."""
