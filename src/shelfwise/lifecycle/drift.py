"""Drift: has what a model sees, or how well it does, moved away from what it was trained on?

- **Data drift**, per input feature, the current window against the reference (the training
  window): the population stability index over the reference's deciles for a numeric feature
  (drifted above 0.2 when the two-sample Kolmogorov-Smirnov test also finds the difference
  significant, p < 0.01: with few rows, as in one week of a few hundred series, PSI alone
  runs above 0.2 from sampling noise: about (bins - 1) / rows), a
  chi-square test for a categorical one (categories seen fewer than 5 times pooled), drifted
  below p = 0.01 when the PSI of the category shares is also above 0.2: with a week of a
  grocer's lines every small shift is significant, and a 50/50 split moving to 60/40 is one
  (PSI 0.04) while 75/25 is not (0.27). A model's inputs have drifted when more than
  ``drifted_share`` of its features have.
- **Performance drift**: the recent error (7 days by default) against the baseline error (30
  days): more than 15% worse is drift, whichever direction the metric runs.

:class:`DriftMonitor` writes every statistic to ``drift_checks`` (per segment where a segment
column is given) and raises one ``drift_detected`` alert (critical) per model and check when
anything drifted, naming what.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from shelfwise.lifecycle.alerts import AlertInbox
from shelfwise.ops import DriftCheck, OperationalDatabase
from shelfwise.ops._models import ALL_SEGMENTS
from shelfwise.ops._schema import DEFAULT_TENANT
from shelfwise.ops.states import AlertType, DriftKind, DriftStatistic

PSI_THRESHOLD = 0.2
CHI2_P_VALUE = 0.01
KS_P_VALUE = 0.01
ERROR_RATIO_THRESHOLD = 1.15
DRIFTED_SHARE = 0.3
MIN_CATEGORY = 5
EPS = 1e-4


@dataclass(frozen=True)
class Statistic:
    """One drift statistic: on a feature (data drift) or on the error (performance drift)."""

    kind: DriftKind
    statistic: DriftStatistic
    value: float
    threshold: float
    drifted: bool
    feature: str | None = None
    segment: str = ALL_SEGMENTS
    details: dict[str, Any] = field(default_factory=dict)


def psi(reference: np.ndarray[Any, Any], current: np.ndarray[Any, Any], bins: int = 10) -> float:
    """Population stability index of ``current`` against ``reference``'s quantile bins."""
    reference = reference[~np.isnan(reference)]
    current = current[~np.isnan(current)]
    if len(reference) == 0 or len(current) == 0:
        return float("nan")
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    expected = np.bincount(
        np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1
    )
    actual = np.bincount(np.searchsorted(edges, current, side="right"), minlength=len(edges) + 1)
    p = np.maximum(expected / expected.sum(), EPS)
    q = np.maximum(actual / actual.sum(), EPS)
    return float(np.sum((q - p) * np.log(q / p)))


def data_drift(
    reference: pd.DataFrame, current: pd.DataFrame, segment: str = ALL_SEGMENTS
) -> list[Statistic]:
    """One statistic per column the two frames share."""
    out = []
    for column in [c for c in reference.columns if c in current.columns]:
        ref, cur = reference[column].dropna(), current[column].dropna()
        if len(ref) == 0 or len(cur) == 0:
            continue
        if pd.api.types.is_numeric_dtype(ref) and not pd.api.types.is_bool_dtype(ref):
            value = psi(ref.to_numpy(float), cur.to_numpy(float))
            ks = stats.ks_2samp(ref.to_numpy(float), cur.to_numpy(float))
            out.append(
                Statistic(
                    DriftKind.DATA,
                    DriftStatistic.PSI,
                    value,
                    PSI_THRESHOLD,
                    bool(value > PSI_THRESHOLD and ks.pvalue < KS_P_VALUE),
                    column,
                    segment,
                    {
                        "ks": float(ks.statistic),
                        "ks_p_value": float(ks.pvalue),
                        "reference_mean": float(ref.mean()),
                        "current_mean": float(cur.mean()),
                    },
                )
            )
        else:
            p_value, details = _chi_square(ref.astype(str), cur.astype(str))
            out.append(
                Statistic(
                    DriftKind.DATA,
                    DriftStatistic.CHI2,
                    p_value,
                    CHI2_P_VALUE,
                    bool(p_value < CHI2_P_VALUE and details["psi"] > PSI_THRESHOLD),
                    column,
                    segment,
                    details,
                )
            )
    return out


def performance_drift(
    recent_error: float,
    baseline_error: float,
    *,
    higher_is_better: bool = False,
    segment: str = ALL_SEGMENTS,
) -> Statistic:
    """Recent against baseline error; a ratio above 1.15 (15% worse) is drift."""
    if higher_is_better:  # a score such as ndcg: worse is lower
        ratio = baseline_error / recent_error if recent_error > 0 else float("inf")
    else:
        ratio = recent_error / baseline_error if baseline_error > 0 else float("inf")
    return Statistic(
        DriftKind.PERFORMANCE,
        DriftStatistic.ERROR_RATIO,
        float(ratio),
        ERROR_RATIO_THRESHOLD,
        bool(ratio > ERROR_RATIO_THRESHOLD),
        None,
        segment,
        {"recent": recent_error, "baseline": baseline_error, "higher_is_better": higher_is_better},
    )


def _chi_square(reference: pd.Series, current: pd.Series) -> tuple[float, dict[str, Any]]:
    counts = pd.concat(
        [reference.value_counts().rename("reference"), current.value_counts().rename("current")],
        axis=1,
    ).fillna(0)
    rare = counts.sum(axis=1) < MIN_CATEGORY
    if rare.any():
        counts = pd.concat([counts[~rare], counts[rare].sum().to_frame("(rare)").T])
    if len(counts) < 2:
        return 1.0, {"categories": len(counts), "psi": 0.0}
    chi2, p_value, _, _ = stats.chi2_contingency(counts.to_numpy().T)
    shares = counts / counts.sum()
    p = np.maximum(shares["reference"].to_numpy(float), EPS)
    q = np.maximum(shares["current"].to_numpy(float), EPS)
    moved = float(np.sum((q - p) * np.log(q / p)))  # the PSI of the category shares
    return float(p_value), {"chi2": float(chi2), "categories": len(counts), "psi": moved}


@dataclass
class DriftReport:
    model_name: str
    version: str
    statistics: list[Statistic]
    drifted_share: float
    drifted: bool
    alert: dict[str, Any] | None

    def _drifted_data(self) -> list[Statistic]:
        return [s for s in self.statistics if s.drifted and s.feature is not None]

    def summary(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "version": self.version,
            "drifted": self.drifted,
            "drifted_share": self.drifted_share,
            "drifted_features": sorted(
                {s.feature for s in self._drifted_data() if s.segment == ALL_SEGMENTS}
            ),
            "drifted_in_segments": sorted(
                f"{s.feature} ({s.segment})"
                for s in self._drifted_data()
                if s.segment != ALL_SEGMENTS
            ),
            "performance": [asdict(s) for s in self.statistics if s.kind == DriftKind.PERFORMANCE],
        }


class DriftMonitor:
    """Runs a model's drift check, records every statistic and raises the alert."""

    def __init__(
        self, operational: OperationalDatabase, alerts: AlertInbox, tenant: str = DEFAULT_TENANT
    ) -> None:
        self.operational, self.alerts, self.tenant = operational, alerts, tenant

    def check(
        self,
        model_name: str,
        version: str,
        reference: pd.DataFrame,
        current: pd.DataFrame,
        *,
        segment_column: str | None = None,
        performance: list[Statistic] | None = None,
        drifted_share: float = DRIFTED_SHARE,
        alert: bool = True,
    ) -> DriftReport:
        """Data drift overall (and per segment of ``segment_column``), plus the given
        performance statistics; recorded, and alerted when anything drifted (unless
        ``alert`` is False: the caller's emergency retrain raises the alert with its
        version)."""
        features = [c for c in reference.columns if c != segment_column]
        statistics = data_drift(reference[features], current[features])
        if segment_column is not None:
            for level, part in current.groupby(segment_column, sort=True):
                base = reference[reference[segment_column] == level]
                if len(base):
                    statistics += data_drift(base[features], part[features], str(level))
        statistics += performance or []
        overall = [s for s in statistics if s.kind == DriftKind.DATA and s.segment == ALL_SEGMENTS]
        share = sum(s.drifted for s in overall) / len(overall) if overall else 0.0
        performed = any(s.drifted for s in statistics if s.kind == DriftKind.PERFORMANCE)
        drifted = share > drifted_share or performed
        with self.operational.session() as session:
            session.add_all(
                DriftCheck(
                    tenant=self.tenant,
                    model_name=model_name,
                    version=version,
                    segment=s.segment,
                    kind=s.kind.value,
                    feature=s.feature,
                    statistic=s.statistic.value,
                    value=_finite(s.value),
                    threshold=s.threshold,
                    drifted=s.drifted,
                    details=s.details,
                )
                for s in statistics
            )
        report = DriftReport(model_name, version, statistics, share, drifted, None)
        if drifted and alert:
            summary = report.summary()
            report.alert = self.alerts.raise_alert(
                AlertType.DRIFT_DETECTED,
                f"{model_name} v{version} has drifted",
                f"{share:.0%} of its input features drifted "
                f"({', '.join(summary['drifted_features'][:10]) or 'none'}); performance "
                f"drift: {'yes' if performed else 'no'}. Review an emergency retrain.",
                # no version to approve yet: the emergency retrain's challenger carries one
                model_name=model_name,
                link=f"/api/v1/models/{version}/card?model={model_name}",
            )
        return report


def _finite(value: float) -> float:
    return value if np.isfinite(value) else 1e308
