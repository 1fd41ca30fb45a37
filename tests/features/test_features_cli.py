"""`shelfwise features ...` on the simulated shop: list, materialise, freshness, show, refusals."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from shelfwise.cli import app
from shelfwise.features.retail import RETAIL_FEATURE_SETS
from shelfwise.settings import Settings
from shelfwise.simulate.shop import SimulatedShop, load_shop
from shelfwise.workspace import Workspace

runner = CliRunner()
MEMORY = {"SHELFWISE_ONLINE_STORE_URL": "memory://"}
PERSON = "P0003"  # loyalty card c3


def last_json(output: str) -> Any:
    return json.loads(output.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def folder(shop: SimulatedShop, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A workspace folder holding the shop, closed so that each command opens it afresh."""
    path = tmp_path_factory.mktemp("shop-cli") / "workspace"
    workspace = Workspace(Settings(workspace=path))
    load_shop(workspace, shop)
    workspace.close()
    return str(path)


def features(folder: str, *args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, ["features", *args, "-w", folder], env=env or MEMORY)


def said(result: Any) -> str:
    """What the command told the user on stderr, as one line (rich wraps at the width)."""
    return " ".join(result.stderr.split())


def orders_before(shop: SimulatedShop, customer: str, moment: str) -> int:
    orders = shop.tables["orders"]
    mask = (orders["customer_ref"] == customer) & (orders["ordered_at"] < pd.Timestamp(moment))
    return int(mask.sum())


def test_list_names_every_set_with_its_entity_kind_and_version(folder: str) -> None:
    result = features(folder, "list")
    assert result.exit_code == 0, result.output
    sets = {item["name"]: item for item in last_json(result.stdout)["sets"]}
    assert list(sets) == [s.name for s in RETAIL_FEATURE_SETS]
    assert sets["person_purchases"]["kind"] == "streaming"
    assert sets["product_attributes"]["kind"] == "static"
    assert sets["person_windows"]["kind"] == "batch"
    for feature_set in RETAIL_FEATURE_SETS:
        item = sets[feature_set.name]
        assert item["entity"] == feature_set.entity
        assert item["version"] == feature_set.version
        assert item["feature_count"] == len(feature_set.feature_names) > 0
        assert item["freshness_target_seconds"] == feature_set.freshness_target_seconds
    assert "person_purchases" in said(result)


def test_materialise_reports_each_set_as_of_the_moment_asked(folder: str) -> None:
    result = features(folder, "materialise", "--as-of", "2024-03-01")
    assert result.exit_code == 0, result.output
    report = last_json(result.stdout)
    assert report["as_of"] == "2024-03-01T00:00:00"
    assert set(report["sets"]) == {s.name for s in RETAIL_FEATURE_SETS}
    assert report["sets"]["person_purchases"]["entities"] == 60
    assert report["sets"]["product_attributes"]["entities"] == 80
    assert all(item["seconds"] >= 0 for item in report["sets"].values())
    assert "gone when this command ends" in said(result)


def test_an_offset_as_of_is_read_as_utc(folder: str) -> None:
    result = features(folder, "materialise", "--as-of", "2024-03-01T02:00:00+02:00")
    assert result.exit_code == 0, result.output
    assert last_json(result.stdout)["as_of"] == "2024-03-01T00:00:00"


@pytest.mark.parametrize("command", ["materialise", "show"])
def test_a_bad_as_of_is_a_usage_error_that_names_the_option(folder: str, command: str) -> None:
    args = ["--person", PERSON] if command == "show" else []
    result = features(folder, command, *args, "--as-of", "2024-13-45")
    assert result.exit_code == 2
    assert "--as-of" in said(result)
    assert "not an ISO date" in said(result)


def test_freshness_fails_on_a_fresh_memory_store_and_says_why(folder: str) -> None:
    result = features(folder, "freshness")
    assert result.exit_code == 1
    report = last_json(result.stdout)
    assert report["ok"] is False
    assert report["sets"]["person_purchases"] == {"ok": False, "detail": "not materialised"}
    assert "memory://" in said(result)


def test_show_materialises_a_memory_store_first_and_says_so(
    folder: str, shop: SimulatedShop
) -> None:
    result = features(folder, "show", "--person", PERSON, "--as-of", "2024-03-01")
    assert result.exit_code == 0, result.output
    assert "materialises it first" in said(result)
    shown = last_json(result.stdout)
    assert shown["materialised_in_process"] is True
    assert shown["as_of"] == "2024-03-01 00:00:00"
    values = shown["features"]
    assert values["orders_total"] == orders_before(shop, "c3", "2024-03-01") > 0
    assert values["person_purchases_missing"] == 0.0
    assert values["age_band"] is not None
    assert "person_purchases" in shown["freshness_seconds"]
    assert "orders_total" in said(result)  # the table


def test_show_pairs_the_person_with_each_sku(folder: str, shop: SimulatedShop) -> None:
    result = features(
        folder, "show", "--person", PERSON, "--sku", "sku0001", "--sku", "sku0002",
        "--as-of", "2024-04-01",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    shown = last_json(result.stdout)
    assert shown["skus"] == ["sku0001", "sku0002"]
    products = shop.tables["products"].set_index("sku")
    orders = shop.tables["orders"]
    lines = shop.tables["order_lines"].merge(orders, on="order_id")
    for sku in ("sku0001", "sku0002"):
        values = shown["features"][sku]
        assert values["category"] == products.loc[sku, "category"]
        bought = lines[
            (lines["customer_ref"] == "c3")
            & (lines["sku"] == sku)
            & (lines["ordered_at"] < pd.Timestamp("2024-04-01"))
        ]
        assert values["pp_purchases"] == len(bought)
        assert values["orders_total"] == orders_before(shop, "c3", "2024-04-01")


def test_an_unknown_person_is_a_usage_error_by_name(folder: str) -> None:
    result = features(folder, "show", "--person", "nobody")
    assert result.exit_code == 2
    assert "unknown person 'nobody'" in said(result)


def test_an_unknown_sku_is_a_usage_error_by_name(folder: str) -> None:
    result = features(folder, "show", "--person", PERSON, "--sku", "sku0001", "--sku", "nope")
    assert result.exit_code == 2
    assert "unknown sku(s) 'nope'" in said(result)


@pytest.mark.service
def test_a_redis_store_is_shared_between_commands(folder: str, redis_url: str) -> None:
    env = {"SHELFWISE_ONLINE_STORE_URL": redis_url}
    assert features(folder, "freshness", env=env).exit_code == 1
    result = features(folder, "materialise", env=env)
    assert result.exit_code == 0, result.output
    fresh = features(folder, "freshness", env=env)
    assert fresh.exit_code == 0, fresh.output
    assert last_json(fresh.stdout)["ok"] is True
    shown = features(folder, "show", "--person", PERSON, env=env)
    assert shown.exit_code == 0, shown.output
    assert last_json(shown.stdout)["materialised_in_process"] is False
    assert "materialises it first" not in said(shown)
    assert last_json(shown.stdout)["features"]["orders_total"] > 0
