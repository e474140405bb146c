"""`make bench`: the media engine against the reference two-pass approach (see bench/run.py)."""
