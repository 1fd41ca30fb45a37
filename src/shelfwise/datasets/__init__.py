"""Loaders for the benchmark datasets, and their mappings into the data contract.

The datasets are read at run time from the folder given by ``--datasets``,
``SHELFWISE_DATASETS`` or ``Settings.datasets_dir``, and are never copied into the project.
The registry is imported eagerly (it is light); each loader's module, which needs pandas, is
imported on first use so that ``shelfwise datasets`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from shelfwise.datasets.registry import (
    DATASETS,
    DatasetInfo,
    DatasetNotFoundError,
    DatasetStatus,
    available_datasets,
    get_dataset,
)

if TYPE_CHECKING:
    from shelfwise.datasets.bandits import OpenBandit, load_open_bandit, open_bandit_to_bandit_logs
    from shelfwise.datasets.causal import (
        hillstrom_to_campaigns,
        hillstrom_to_treatment_assignments,
        load_hillstrom,
    )
    from shelfwise.datasets.forecasting import load_stallion
    from shelfwise.datasets.identity import (
        AbtBuy,
        abt_buy_to_products,
        febrl_entity_id,
        febrl_to_customer_records,
        febrl_true_links,
        febrl_true_pairs,
        load_abt_buy,
        load_febrl,
        load_splink_fake_1000,
        splink_fake_1000_to_customer_records,
        splink_fake_1000_true_pairs,
    )
    from shelfwise.datasets.interactions import (
        MovieLens,
        load_movielens_100k,
        movielens_to_events,
        movielens_to_products,
    )
    from shelfwise.datasets.survival import CdnowOrders, cdnow_to_orders, load_cdnow

_LAZY: dict[str, str] = {
    **dict.fromkeys(
        (
            "AbtBuy",
            "abt_buy_to_products",
            "febrl_entity_id",
            "febrl_to_customer_records",
            "febrl_true_links",
            "febrl_true_pairs",
            "load_abt_buy",
            "load_febrl",
            "load_splink_fake_1000",
            "splink_fake_1000_to_customer_records",
            "splink_fake_1000_true_pairs",
        ),
        "shelfwise.datasets.identity",
    ),
    **dict.fromkeys(
        ("MovieLens", "load_movielens_100k", "movielens_to_events", "movielens_to_products"),
        "shelfwise.datasets.interactions",
    ),
    **dict.fromkeys(
        ("hillstrom_to_campaigns", "hillstrom_to_treatment_assignments", "load_hillstrom"),
        "shelfwise.datasets.causal",
    ),
    **dict.fromkeys(
        ("OpenBandit", "load_open_bandit", "open_bandit_to_bandit_logs"),
        "shelfwise.datasets.bandits",
    ),
    **dict.fromkeys(
        ("CdnowOrders", "cdnow_to_orders", "load_cdnow"), "shelfwise.datasets.survival"
    ),
    "load_stallion": "shelfwise.datasets.forecasting",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "DATASETS",
    "AbtBuy",
    "CdnowOrders",
    "DatasetInfo",
    "DatasetNotFoundError",
    "DatasetStatus",
    "MovieLens",
    "OpenBandit",
    "abt_buy_to_products",
    "available_datasets",
    "cdnow_to_orders",
    "febrl_entity_id",
    "febrl_to_customer_records",
    "febrl_true_links",
    "febrl_true_pairs",
    "get_dataset",
    "hillstrom_to_campaigns",
    "hillstrom_to_treatment_assignments",
    "load_abt_buy",
    "load_cdnow",
    "load_febrl",
    "load_hillstrom",
    "load_movielens_100k",
    "load_open_bandit",
    "load_splink_fake_1000",
    "load_stallion",
    "movielens_to_events",
    "movielens_to_products",
    "open_bandit_to_bandit_logs",
    "splink_fake_1000_to_customer_records",
    "splink_fake_1000_true_pairs",
]
