"""Every test here runs on SQLite and on PostgreSQL (``database``, in tests/conftest.py)."""
