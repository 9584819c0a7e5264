"""The bad-input corpus (see build.py)."""
