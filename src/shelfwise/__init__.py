"""shelfwise: a retailer's production ML platform.

The public surface is small: settings, the workspace, the data contract and ingest. Names are
imported on first use, so `import shelfwise` is cheap and does nothing at import time.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Settings": "shelfwise.settings",
    "Workspace": "shelfwise.workspace",
    "AnalyticStore": "shelfwise.data.store",
    "IngestReport": "shelfwise.data.ingest",
    "ingest": "shelfwise.data.ingest",
    "ContractError": "shelfwise.data.validation",
    "TABLES": "shelfwise.data.contract",
    "get_table": "shelfwise.data.contract",
}
__all__ = [
    "TABLES",
    "AnalyticStore",
    "ContractError",
    "IngestReport",
    "Settings",
    "Workspace",
    "__version__",
    "get_table",
    "ingest",
]

if TYPE_CHECKING:
    from shelfwise.data.contract import TABLES, get_table
    from shelfwise.data.ingest import IngestReport, ingest
    from shelfwise.data.store import AnalyticStore
    from shelfwise.data.validation import ContractError
    from shelfwise.settings import Settings
    from shelfwise.workspace import Workspace


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'shelfwise' has no attribute {name!r}")
