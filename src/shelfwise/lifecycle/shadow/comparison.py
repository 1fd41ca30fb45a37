"""The champion against a shadow version, on the samples both answered and that have actuals.

A sample is one entity of one request that the champion and the tested version both predicted
and whose actual is in: one request for the recommender, one series-week of a request for the
forecaster. Pairing makes the two sides' samples the same ones, so their counts are equal and
their errors differ only by the models.

Errors, lower is better: the forecaster's MAE (its primary metric, with WAPE beside it), and
for the recommender 1 − hit rate of the list (a hit: the person bought any sku it held). Hit
rate rather than precision@k, because ``k`` is the caller's choice and precision would move
with it, while a hit asks what the list is for: did it hold something the person went on to
buy. A request whose person bought nothing in the attribution window is no sample: both lists
miss it and it cannot tell them apart. The person saw the champion's list, which may itself
have led to the purchase, so the comparison leans towards the champion: a challenger that wins
in shadow wins despite that.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import aliased

from shelfwise.evaluation.ranking import hit_rate_at_k
from shelfwise.forecast.metrics import forecast_metrics
from shelfwise.forecast.stage import MODEL_NAME as FORECASTER
from shelfwise.ops import OperationalDatabase, ShadowPrediction
from shelfwise.ops._schema import utc_now
from shelfwise.ops.states import ShadowRole
from shelfwise.recommend.stage import MODEL_NAME as RECOMMENDER

COMPARISON_WINDOW = timedelta(days=28)
MIN_SAMPLES = 200
CHAMPION = ShadowRole.CHAMPION.value
Scores = dict[str, float | None]
Score = Callable[[list[Any], list[Any]], Scores]


def forecast_errors(predicted: list[Any], actual: list[Any]) -> Scores:
    """MAE (the error) and WAPE of forecasts (``{"forecast": ...}``) against quantities."""
    metrics = forecast_metrics(
        np.asarray(actual, float), np.asarray([p["forecast"] for p in predicted], float)
    )
    return {"error": metrics["mae"], "mae": metrics["mae"], "wape": metrics["wape"]}


def ranking_errors(predicted: list[Any], actual: list[Any]) -> Scores:
    """1 − hit rate (the error) of lists of skus against the skus bought."""
    depth = max([1, *(len(shown) for shown in predicted)])
    hits = np.zeros((len(predicted), depth), dtype=bool)
    for row, (shown, bought) in enumerate(zip(predicted, actual, strict=True)):
        wanted = set(bought)
        hits[row, : len(shown)] = [sku in wanted for sku in shown]
    targets = np.asarray([max(1, len(set(bought))) for bought in actual])
    hit_rate = hit_rate_at_k(hits, targets, depth)
    return {"error": 1.0 - hit_rate, "hit_rate": hit_rate}


# How each family's shadow predictions are scored: the error's name and its function.
SCORING: dict[str, tuple[str, Score]] = {
    FORECASTER: ("mae", forecast_errors),
    RECOMMENDER: ("1 - hit_rate", ranking_errors),
}


def compare(
    database: OperationalDatabase,
    tenant: str,
    model_name: str,
    version: str,
    *,
    window: timedelta = COMPARISON_WINDOW,
    min_samples: int = MIN_SAMPLES,
    champion_now: str | None = None,
) -> dict[str, Any]:
    """The champion against ``version`` over the last ``window``: the paired samples, each
    side's error (and the family's other scores), the champion's version (the one that
    answered most of the samples; ``champion_now`` when there are none) and whether the test
    has its ``min_samples``. JSON throughout, as it is stored with the test's completion."""
    try:
        metric, score = SCORING[model_name]
    except KeyError:
        raise LookupError(
            f"no shadow test scores {model_name!r}; shadow tests score " + ", ".join(SCORING)
        ) from None
    since = utc_now() - window
    champion, tested = aliased(ShadowPrediction), aliased(ShadowPrediction)
    query = (
        sa.select(champion, tested.prediction, tested.role)
        .join(
            tested,
            sa.and_(
                tested.tenant == champion.tenant,
                tested.request_id == champion.request_id,
                tested.model_name == champion.model_name,
                tested.entity_key == champion.entity_key,
            ),
        )
        .where(
            champion.tenant == tenant,
            champion.model_name == model_name,
            champion.role == CHAMPION,
            champion.predicted_at >= since,
            champion.actual.is_not(None),
            tested.version == version,
            tested.role != CHAMPION,
        )
        .order_by(champion.predicted_at, champion.id)
    )
    with database.session() as session:
        pairs = session.execute(query).all()
    actual = [row.actual for row, _, _ in pairs]
    versions = Counter(row.version for row, _, _ in pairs)
    ours = _scored(score, [row.prediction for row, _, _ in pairs], actual)
    theirs = _scored(score, [prediction for _, prediction, _ in pairs], actual)
    difference = None
    if ours["error"] is not None and theirs["error"] is not None:
        difference = theirs["error"] - ours["error"]
    samples = len(pairs)
    return {
        "model": model_name,
        "metric": metric,
        "window_days": window / timedelta(days=1),
        "since": since.isoformat(),
        "samples": samples,
        "requests": len({row.request_id for row, _, _ in pairs}),
        "min_samples": min_samples,
        "ready": samples >= min_samples,
        "champion": {
            "version": versions.most_common(1)[0][0] if versions else champion_now,
            "samples": samples,
            **ours,
        },
        "challenger": {
            "version": version,
            "role": pairs[-1][2] if pairs else None,  # challenger or experimental
            "samples": samples,
            **theirs,
        },
        "difference": difference,  # the challenger's error less the champion's
        "champion_versions": dict(versions),
    }


def _scored(score: Score, predicted: list[Any], actual: list[Any]) -> Scores:
    """The scores, or an error of None without samples; NaN (a WAPE over weeks that sold
    nothing) as None too, since JSON has no NaN."""
    if not predicted:
        return {"error": None}
    return {
        name: None if value is None or not np.isfinite(value) else float(value)
        for name, value in score(predicted, actual).items()
    }
