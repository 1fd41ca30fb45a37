"""Feature store."""
