"""The same saved identity model scores the same pairs on Spark (local mode) as on DuckDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shelfwise.datasets.identity import febrl_to_customer_records, load_febrl
from shelfwise.identity.linkage import LinkageSession
from shelfwise.identity.model import IdentityModel
from shelfwise.identity.settings import FEBRL_SETTINGS

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from shelfwise.identity.spark import local_spark

    session = local_spark(cores=2)
    yield session
    session.stop()


def test_a_model_saved_on_duckdb_scores_the_same_pairs_on_spark(
    spark: Any, datasets_dir: Path, tmp_path: Path
) -> None:
    records = febrl_to_customer_records(load_febrl("febrl3", datasets_dir).head(1_500), "febrl")
    IdentityModel(FEBRL_SETTINGS).fit(records).save(tmp_path / "model")
    model = IdentityModel.load(tmp_path / "model")
    with LinkageSession(FEBRL_SETTINGS) as session:
        session.load("records", records)
        on_duckdb = model.score(session, "records")
        on_spark = model.score(session, "records", spark=spark)
    keys = ["unique_id_l", "unique_id_r"]
    both = on_duckdb.merge(on_spark, on=keys, how="outer", indicator=True)
    assert (both["_merge"] == "both").all(), both["_merge"].value_counts()
    difference = (both["match_probability_x"] - both["match_probability_y"]).abs()
    assert difference.max() < 1e-5
    assert len(on_duckdb) > 500
