"""Writing a run's results: deterministic files and the all-or-nothing swap of the output
folder (files.py), where the files end up, a local folder or a URL (publish.py), and the OS
locks that keep one run per output and tell a live run's folders from a dead one's
(locks.py)."""
