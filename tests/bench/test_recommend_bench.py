"""`shelfwise bench recommend` in its smoke mode, on both protocols and a log of your own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shelfwise.bench import BenchOptions, dumps, run_benchmark
from shelfwise.settings import Settings

METRICS = ("ndcg@10", "recall@20", "map@12", "hr@10", "coverage@10")


def _run(settings: Settings, datasets_dir: Path, **options: object) -> dict[str, object]:
    bench = BenchOptions(settings, datasets=datasets_dir, smoke=True, **options)  # type: ignore[arg-type]
    result: dict[str, object] = json.loads(dumps(run_benchmark("recommend", bench)))
    return result


@pytest.mark.data
@pytest.mark.parametrize(
    ("protocol", "tracks", "references"),
    [
        ("cj-next4w", {"all", "discovery"}, {"popularity", "buy_again", "ease", "buy_again_ease"}),
        ("ml100k-msr", {"default"}, {"popularity", "ease"}),
    ],
)
def test_recommend_benchmark_smoke(
    settings: Settings,
    datasets_dir: Path,
    protocol: str,
    tracks: set[str],
    references: set[str],
) -> None:
    result = _run(settings, datasets_dir, protocol=protocol)
    assert result["benchmark"] == "recommend"
    assert result["protocol"] == protocol
    assert result["primary_metric"] == "ndcg@10"
    by_track = result["tracks"]
    assert isinstance(by_track, dict)
    assert set(by_track) == tracks
    for track, results in by_track.items():
        ours = results["shelfwise"]
        for metric in METRICS:
            assert 0.0 <= ours[metric] <= 1.0, (track, metric)
        assert ours["ndcg@10"] > results["popularity"]["ndcg@10"] / 2
        assert ours["ann"]["recall@200"] >= 0.9
        assert set(ours["by_activity"]) == {"light", "regular", "frequent"}
        if protocol == "cj-next4w":  # demographic groups, the households without them apart
            assert {"unknown", "45-54"} <= set(ours["by_age"])
            assert sum(s["users"] for s in ours["by_income"].values()) == ours["users"]
        expected = references if track != "discovery" else {"popularity", "ease"}
        assert expected <= set(results)
        assert "shelfwise_retrieval" in results
        assert results["summary"]["best_reference"] in expected


@pytest.mark.data
def test_recommend_benchmark_on_your_own_log(settings: Settings, datasets_dir: Path) -> None:
    transactions = datasets_dir / "dunnhumby_complete_journey" / "transactions.parquet"
    extra = {
        "interactions": str(transactions),
        "user_col": "household_id",
        "item_col": "product_id",
        "time_col": "transaction_timestamp",
        "split": "last-per-user",
    }
    result = _run(settings, datasets_dir, extra=extra)
    assert str(result["protocol"]).startswith("bring-your-own")
    tracks = result["tracks"]
    assert isinstance(tracks, dict)
    assert tracks["default"]["shelfwise"]["users"] > 0


@pytest.mark.data
def test_recommend_benchmark_on_a_ratings_log_from_the_cli(datasets_dir: Path) -> None:
    """MovieLens as a user has it (a gzipped CSV, Unix seconds): a global split without its
    first test time is refused with the range to choose from; with one and --exclude-seen it
    runs, above popularity."""
    from typer.testing import CliRunner

    from shelfwise.cli import app

    log = datasets_dir / "movielens_100k" / "ml-100k.inter.csv.gz"
    command = ["bench", "recommend", "--smoke", "--interactions", str(log)]
    command += ["--user-col", "user_id", "--item-col", "item_id", "--time-col", "timestamp"]
    command += ["--split", "global"]
    runner = CliRunner()
    refused = runner.invoke(app, command)
    assert refused.exit_code == 2
    assert "needs test_from (--test-from)" in refused.output
    assert "'timestamp' runs from 874724710.0 to 893286638.0" in " ".join(refused.output.split())
    done = runner.invoke(app, [*command, "--test-from", "890000000", "--exclude-seen"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.output.strip().splitlines()[-1])
    assert result["protocol"] == "bring-your-own:global"
    ours = result["tracks"]["default"]["shelfwise"]
    assert ours["users"] > 0
    assert ours["ndcg@10"] > result["tracks"]["default"]["popularity"]["ndcg@10"]
