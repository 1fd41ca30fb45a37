"""Why two records are one person: the exact key that matched, or the weight of each field.

A model link stores the match weight each comparison gave it (and the term-frequency part of
it: a rare surname weighs more than a common one); the explanation names each comparison's
level from the saved model's m and u probabilities, so a link can be explained long after it
was scored, by the model version that scored it.
"""

from __future__ import annotations

import math
from typing import Any

KEY_REASONS = {
    "email": "the same email address (normalised: case, dots and +tags)",
    "phone": "the same phone number (E.164)",
    "loyalty_id": "the same loyalty card",
}


def _weight(level: dict[str, Any]) -> float | None:
    m, u = level.get("m_probability"), level.get("u_probability")
    if not m or not u:
        return None
    return math.log2(m / u)


def _levels(comparison: dict[str, Any]) -> list[dict[str, Any]]:
    return [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]


def _numbers(values: Any) -> list[float]:
    """A stored list of weights (a list, a numpy array, or missing) as floats."""
    if values is None or (isinstance(values, float) and math.isnan(values)):
        return []
    return [float(v) for v in values]


def _level_of(comparison: dict[str, Any], weight: float) -> str:
    """The level whose weight log2(m/u) is the one the pair got (a null level weighs 0)."""
    best, label = math.inf, "missing on one side"
    if abs(weight) < 1e-12:
        return label
    for level in _levels(comparison):
        level_weight = _weight(level)
        if level_weight is not None and abs(level_weight - weight) < best:
            best = abs(level_weight - weight)
            label = str(level.get("label_for_charts") or level.get("sql_condition"))
    return label


def explain_link(model: dict[str, Any], link: dict[str, Any]) -> dict[str, Any]:
    """A JSON-ready explanation of one row of :data:`shelfwise.identity.model.LINK_COLUMNS`."""
    rule = str(link.get("rule"))
    base = {
        "unique_id_l": link.get("unique_id_l"),
        "unique_id_r": link.get("unique_id_r"),
        "match_probability": float(link.get("match_probability", math.nan)),
        "rule": rule,
    }
    if rule != "model":
        reason = KEY_REASONS.get(rule, f"the same {rule}")
        return {**base, "because": f"deterministic rule {rule!r}: {reason}"}
    weights = _numbers(link.get("weights"))
    tf_weights = _numbers(link.get("tf_weights")) or [0.0] * len(weights)
    prior = float(model["probability_two_random_records_match"])
    fields = []
    for comparison, weight, tf in zip(model["comparisons"], weights, tf_weights, strict=False):
        fields.append(
            {
                "field": comparison["output_column_name"],
                "level": _level_of(comparison, float(weight)),
                "weight": round(float(weight) + float(tf), 3),
                "term_frequency_adjustment": round(float(tf), 3),
            }
        )
    fields.sort(key=lambda f: -abs(f["weight"] or 0.0))
    prior_weight = math.log2(prior / (1 - prior))
    return {
        **base,
        "vetoed": bool(link.get("vetoed", False)),
        "prior_weight": round(prior_weight, 3),
        "fields": fields,
        "because": "; ".join(
            f"{f['field']}: {f['level']} ({f['weight']:+.1f})"
            for f in [f for f in fields if f["weight"]][:4]
        )
        + f"; against a prior of {prior_weight:+.1f}",
        "note": "weight = log2(m/u) of the level, plus its term-frequency adjustment",
    }
