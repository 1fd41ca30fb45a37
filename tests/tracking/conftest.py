"""Trackers on fresh SQLite stores: the ``tracker`` fixture is in tests/conftest.py."""
