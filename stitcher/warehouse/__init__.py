"""`stitcher sql`: the pipeline as a script for a warehouse (script.py: recorded from the
pipeline's own statements, guarded and published; dialects.py: what Snowflake and BigQuery
need rewritten), and `run_script`, the driver that runs such a script over a DB-API
connection: `from stitcher.warehouse import run_script`."""

from stitcher.warehouse.script import run_script

__all__ = ["run_script"]
