"""Alembic migrations of the operational tables, run by :class:`OperationalDatabase`."""
