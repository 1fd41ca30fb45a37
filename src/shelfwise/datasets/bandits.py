"""The Open Bandit Dataset (ZOZOTOWN), small sample: logs of two behaviour policies.

A uniform-random policy and the production Bernoulli Thompson sampling policy each chose an
item for one of three slots of a recommendation widget; 10,000 impressions per policy and
campaign, with the logging propensity of every choice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, NamedTuple, get_args

import pandas as pd

from shelfwise.datasets._frames import contract_frame, json_records, read_csv_typed, row_numbers
from shelfwise.datasets.registry import dataset_file

BanditPolicy = Literal["random", "bts"]
BanditCampaign = Literal["all", "men", "women"]
POLICIES: tuple[str, ...] = get_args(BanditPolicy)
CAMPAIGNS: tuple[str, ...] = get_args(BanditCampaign)
USER_FEATURES = tuple(f"user_feature_{k}" for k in range(4))
LOG_DTYPES = {
    "timestamp": "string",
    "item_id": "int64",
    "position": "int64",
    "click": "int64",
    "propensity_score": "float64",
    **dict.fromkeys(USER_FEATURES, "string"),
}
ITEM_CONTEXT_DTYPES = {
    "item_id": "int64",
    "item_feature_0": "float64",
    "item_feature_1": "string",
    "item_feature_2": "string",
    "item_feature_3": "string",
}
AFFINITY_PREFIX = "user-item_affinity_"


class OpenBandit(NamedTuple):
    """The log of one (policy, campaign) and the hashed features of its items."""

    log: pd.DataFrame
    item_context: pd.DataFrame


def load_open_bandit(
    policy: BanditPolicy,
    campaign: BanditCampaign = "all",
    datasets_dir: Path | str | None = None,
) -> OpenBandit:
    """The log of ``policy`` (``random`` or ``bts``) in ``campaign``, and its item context.

    Log columns as SOURCE.md states: ``timestamp`` (text, UTC), ``item_id`` (the arm),
    ``position`` (1-3), ``click`` (the reward), ``propensity_score``, the hashed
    ``user_feature_0..3`` and one ``user-item_affinity_<k>`` per item (80 for ``all``).
    Only campaign ``all`` is in the shared folder; ``men``/``women`` load where present.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; expected one of {POLICIES}")
    if campaign not in CAMPAIGNS:
        raise ValueError(f"unknown campaign {campaign!r}; expected one of {CAMPAIGNS}")
    folder = f"{policy}/{campaign}"
    log_path = dataset_file("open_bandit_dataset", f"{folder}/{campaign}.csv.gz", datasets_dir)
    context_path = dataset_file(
        "open_bandit_dataset", f"{folder}/item_context.csv.gz", datasets_dir
    )
    log = read_csv_typed(log_path, LOG_DTYPES, more_columns="float64")
    affinities = list(log.columns[len(LOG_DTYPES) :])
    if not all(name.startswith(AFFINITY_PREFIX) for name in affinities):
        raise ValueError(f"{log_path}: unexpected columns {affinities[:3]}...")
    return OpenBandit(log, read_csv_typed(context_path, ITEM_CONTEXT_DTYPES))


def open_bandit_to_bandit_logs(
    log: pd.DataFrame, policy: str, campaign: str = "all"
) -> pd.DataFrame:
    """An Open Bandit log as contract ``bandit_logs``.

    ``log_id`` is ``<policy>-<campaign>-<row>`` (1-based row in the file); ``logged_at`` the
    timestamp as naive UTC; ``action`` the item id; ``propensity`` the logging policy's
    ``propensity_score``; ``reward`` the click; ``context`` the user features and the
    user-item affinities, under their original names.
    """
    context_columns = [
        c for c in log.columns if c in USER_FEATURES or c.startswith(AFFINITY_PREFIX)
    ]
    logged_at = pd.to_datetime(log["timestamp"], utc=True).dt.tz_convert(None)
    values = {
        "log_id": f"{policy}-{campaign}-" + row_numbers(len(log)),
        "logged_at": logged_at,
        "policy": policy,
        "action": log["item_id"].astype("string"),
        "position": log["position"],
        "propensity": log["propensity_score"],
        "reward": log["click"].astype("float64"),
        "context": json_records(log[context_columns]),
    }
    return contract_frame("bandit_logs", values, len(log))
