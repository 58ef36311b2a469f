"""Synthetic events for tests, benchmarks and `stitcher generate`: apart from the product code,
which never imports it (only the CLI's `generate` command does, when it runs)."""
