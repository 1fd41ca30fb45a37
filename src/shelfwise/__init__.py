"""shelfwise: a retailer's production ML platform."""

from __future__ import annotations

__version__ = "0.1.0"
