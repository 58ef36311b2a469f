"""Reading the input: the input formats' registry (formats.py), finding the tables and mapping
their columns onto one events schema (load.py), Mixpanel's export format (mixpanel.py), and the
checks that say where a CSV or JSON-lines file breaks when a read fails (csv_check.py,
json_check.py)."""
