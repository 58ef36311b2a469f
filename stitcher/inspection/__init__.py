"""Reading finished outputs: explain (explanations.py), diff and the comparison each run makes
with the output it replaces (changes.py), report.html (report.py, charts.py), the run's
metrics and `--fail-if` (thresholds.py). Everything here reads an output folder (results.py)
or a run record; nothing here changes an output."""
