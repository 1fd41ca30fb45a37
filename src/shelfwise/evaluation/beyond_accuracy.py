"""What accuracy does not say: novelty, diversity, segments, and off-policy value.

Frames follow :mod:`shelfwise.evaluation.ranking`: recommendations have one row per
(``person_id``, ``rank``) with ranks from 1, and ``sku`` the item at that rank. Only ranks up
to ``k`` count; a list may be shorter than ``k``.

- :func:`novelty_at_k`: how unexpected the recommended skus are, as the mean self-information
  ``-log2(share of training interactions)`` of each (popular skus carry little information).
- :func:`intra_list_diversity_at_k`: how different the skus of one list are from each other,
  by category or by embedding.
- :func:`metrics_by_segment`: the ranking metrics per customer segment, with its user count.
- :func:`ips_estimate`: the value of a ranking policy estimated from logs of another policy that
  recorded the propensity of what it showed (inverse propensity scoring).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from shelfwise.evaluation.ranking import DEFAULT_METRICS, ranking_metrics

DEFAULT_BOOTSTRAP = 1_000
BOOTSTRAP_LEVEL = 0.95


def _top(recommendations: pd.DataFrame, k: int, rank: str) -> pd.DataFrame:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    ranks = recommendations[rank].to_numpy(dtype=np.int64)
    if len(ranks) and ranks.min() < 1:
        raise ValueError(f"{rank}: ranks start at 1")
    return recommendations[ranks <= k]


def novelty_at_k(
    recommendations: pd.DataFrame,
    train: pd.DataFrame,
    k: int = 10,
    *,
    user: str = "person_id",
    item: str = "sku",
    rank: str = "rank",
) -> float:
    """Mean self-information ``-log2(n_i / N)`` of the skus in each top-k list, in bits.

    ``n_i`` is the number of rows of ``train`` with sku i and ``N`` the number of rows; a sku
    that training never saw counts as 1 interaction (the most novel possible). Each list's mean
    is averaged over the users with a list, so long and short lists weigh alike.
    """
    top = _top(recommendations, k, rank)
    if not len(top):
        return 0.0
    if not len(train):
        raise ValueError("train has no rows: novelty needs training interactions")
    counts = train[item].value_counts()
    n_i = top[item].map(counts).fillna(1).to_numpy(dtype=np.float64)
    information = -np.log2(n_i / len(train))
    per_user = pd.Series(information).groupby(top[user].to_numpy()).mean()
    return float(per_user.mean())


def _unit_rows(embeddings: pd.DataFrame) -> pd.DataFrame:
    values = embeddings.to_numpy(dtype=np.float64)
    norms = np.linalg.norm(values, axis=1)
    if not np.all(np.isfinite(values)) or np.any(norms == 0):
        raise ValueError("embeddings: every row must be finite and non-zero (cosine needs it)")
    return pd.DataFrame(values / norms[:, None], index=embeddings.index)


def _lookup(table: pd.DataFrame | pd.Series, skus: pd.Series, what: str) -> NDArray[np.int64]:
    position = pd.Index(table.index).get_indexer(pd.Index(skus))
    if np.any(position < 0):
        missing = pd.unique(skus[position < 0])
        raise ValueError(
            f"{what} lacks {len(missing):,} recommended sku(s), e.g. {list(missing[:5])}"
        )
    return np.asarray(position, dtype=np.int64)


def intra_list_diversity_at_k(
    recommendations: pd.DataFrame,
    k: int = 10,
    *,
    categories: pd.Series | None = None,
    embeddings: pd.DataFrame | None = None,
    user: str = "person_id",
    item: str = "sku",
    rank: str = "rank",
) -> float:
    """Mean pairwise distance between the skus of each top-k list, averaged over lists.

    Give exactly one of ``categories`` (a Series sku -> category: two skus are at distance 1
    when their categories differ, else 0) or ``embeddings`` (a frame indexed by sku, one column
    per dimension: distance = 1 - cosine similarity). Lists with fewer than two skus have no
    pairs and are left out; every recommended sku must be in the mapping (a missing category
    counts as one category of its own).
    """
    if (categories is None) == (embeddings is None):
        raise ValueError("give exactly one of categories or embeddings")
    top = _top(recommendations, k, rank)
    lists, row = np.unique(top[user].to_numpy(dtype=str), return_inverse=True)
    size = np.bincount(row, minlength=len(lists)).astype(np.float64)
    pairs = size * (size - 1) / 2
    if categories is not None:
        category = categories.to_numpy()[_lookup(categories, top[item], "categories")]
        same = (
            pd.DataFrame({"list": row, "category": category})
            .groupby(["list", "category"], dropna=False)
            .size()
        )
        same_pairs = (same * (same - 1) / 2).groupby(level="list").sum()
        similar = np.zeros(len(lists))
        similar[same_pairs.index.to_numpy(dtype=np.int64)] = same_pairs.to_numpy()
    else:
        assert embeddings is not None
        unit = _unit_rows(embeddings).to_numpy()[_lookup(embeddings, top[item], "embeddings")]
        summed = np.zeros((len(lists), unit.shape[1]))
        np.add.at(summed, row, unit)
        # Σ_{i<j} cos(i, j) = (|Σ v|² - Σ |v|²) / 2 for unit vectors v.
        similar = ((summed**2).sum(axis=1) - size) / 2
    has_pairs = pairs > 0
    if not has_pairs.any():
        return 0.0
    return float(np.mean(1.0 - similar[has_pairs] / pairs[has_pairs]))


def metrics_by_segment(
    recommendations: pd.DataFrame,
    targets: pd.DataFrame,
    segments: pd.Series,
    *,
    catalogue_size: int,
    metrics: Sequence[str] = DEFAULT_METRICS,
    unknown: Hashable = "unknown",
    user: str = "person_id",
    item: str = "sku",
    rank: str = "rank",
) -> dict[Hashable, dict[str, float]]:
    """:func:`~shelfwise.evaluation.ranking.ranking_metrics` per segment of the target users.

    ``segments`` maps user -> segment, indexed by the same ids as ``targets`` (strings in
    shelfwise's protocols: cast a frame keyed by integer household ids first). Users it does
    not name, or names with a missing segment, fall in the segment ``unknown``, so no evaluated
    user is lost. Each
    segment's metrics carry ``"users"``, its number of evaluated users; coverage stays relative
    to the whole catalogue. Segments come sorted by their text.
    """
    users = pd.unique(targets[user])
    segment_of = pd.Series(users).map(segments).astype(object)
    segment_of = segment_of.where(segment_of.notna(), unknown)
    out: dict[Hashable, dict[str, float]] = {}
    for segment in sorted(pd.unique(segment_of), key=str):
        members = users[(segment_of == segment).to_numpy()]
        scores = ranking_metrics(
            recommendations[recommendations[user].isin(members)],
            targets[targets[user].isin(members)],
            catalogue_size=catalogue_size,
            metrics=metrics,
            user=user,
            item=item,
            rank=rank,
        )
        out[segment] = {"users": len(members), **scores}
    return out


def ips_estimate(
    logged: pd.DataFrame,
    recommendations: pd.DataFrame,
    k: int = 10,
    *,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    user: str = "person_id",
    item: str = "sku",
    reward: str = "reward",
    propensity: str = "propensity",
    rank: str = "rank",
) -> dict[str, float]:
    """The mean reward per logged round had the ranking policy chosen, by inverse propensity.

    ``logged`` has one row per round: the user, the item the logging policy showed, the reward
    it earned and the probability (0, 1] with which that policy chose it. The policy under test
    is deterministic: it chooses the logged item when the item is in its top ``k`` for that
    user, so the weight of a round is ``1[chosen] / propensity``. Returns:

    - ``ips``: mean of weight x reward over all rounds (unbiased, high variance);
    - ``snips``: Σ weight x reward / Σ weight (self-normalised: biased, steadier; NaN when the
      policy chooses no logged item);
    - ``*_low`` / ``*_high``: percentile bootstrap 95% intervals over ``n_bootstrap`` resamples of
      the rounds (fixed ``seed``; resamples without a chosen round are left out of SNIPS');
    - ``rounds`` and ``matched``, the number of rounds and of those the policy chose.
    """
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be at least 1, got {n_bootstrap}")
    if not len(logged):
        raise ValueError("logged has no rounds")
    p = logged[propensity].to_numpy(dtype=np.float64)
    r = logged[reward].to_numpy(dtype=np.float64)
    if not np.all((p > 0) & (p <= 1)):
        raise ValueError(f"{propensity}: every propensity must be in (0, 1]")
    if not np.all(np.isfinite(r)):
        raise ValueError(f"{reward}: every reward must be a finite number")
    top = _top(recommendations, k, rank)
    chosen = pd.MultiIndex.from_frame(logged[[user, item]].astype(str)).isin(
        pd.MultiIndex.from_frame(top[[user, item]].astype(str))
    )
    weight = chosen / p

    def estimates(rows: NDArray[np.int64] | slice) -> tuple[float, float]:
        w, wr = weight[rows], weight[rows] * r[rows]
        normalised = wr.sum() / w.sum() if w.sum() > 0 else np.nan
        return float(wr.mean()), float(normalised)

    ips, snips = estimates(slice(None))
    rng = np.random.default_rng(seed)
    resampled = np.array([estimates(rng.integers(0, len(r), len(r))) for _ in range(n_bootstrap)])
    tail = 100 * (1 - BOOTSTRAP_LEVEL) / 2
    ips_low, ips_high = np.percentile(resampled[:, 0], [tail, 100 - tail])
    finite = resampled[np.isfinite(resampled[:, 1]), 1]
    snips_low, snips_high = (
        np.percentile(finite, [tail, 100 - tail]) if len(finite) else (np.nan, np.nan)
    )
    return {
        "ips": ips,
        "ips_low": float(ips_low),
        "ips_high": float(ips_high),
        "snips": snips,
        "snips_low": float(snips_low),
        "snips_high": float(snips_high),
        "rounds": len(r),
        "matched": int(chosen.sum()),
    }
