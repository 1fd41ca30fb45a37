"""A small simulated shop, loaded once per module, for the feature store's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shelfwise.settings import Settings
from shelfwise.simulate.shop import SimulatedShop, load_shop, simulate_shop
from shelfwise.workspace import Workspace


@pytest.fixture(scope="module")
def shop() -> SimulatedShop:
    return simulate_shop(seed=0)


@pytest.fixture(scope="module")
def shop_workspace(
    shop: SimulatedShop, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Workspace]:
    folder: Path = tmp_path_factory.mktemp("shop")
    workspace = Workspace(Settings(workspace=folder / "workspace"))
    load_shop(workspace, shop)
    yield workspace
    workspace.close()
