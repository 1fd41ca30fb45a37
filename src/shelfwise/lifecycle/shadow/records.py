"""Shadow predictions in, and their actuals when they arrive.

A prediction's ``entity_key`` is what its actual will be about, the same for every role of one
request, so that the champion's and a challenger's rows pair up: the person for a list of
skus, the series and week for a forecast (:func:`forecast_key`). Every role's row of a request
carries the request's time (``predicted_at``), so that an actual dated by that time reaches all
of them or none.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pandas as pd
import sqlalchemy as sa

from shelfwise.forecast.panel import PERIOD, SERIES, TARGET
from shelfwise.forecast.stage import MODEL_NAME as FORECASTER
from shelfwise.forecast.stage import workspace_demand
from shelfwise.ops import BatchWriter, OperationalDatabase, ShadowPrediction
from shelfwise.ops._models import ALL_SEGMENTS
from shelfwise.ops._schema import utc_now
from shelfwise.ops.states import ShadowRole
from shelfwise.recommend.stage import MODEL_NAME as RECOMMENDER
from shelfwise.workspace import Workspace

ATTRIBUTION_WINDOW = timedelta(days=7)


class Prediction(NamedTuple):
    """One version's answer about one entity: a person's list of skus, a series' week."""

    role: ShadowRole
    version: str
    entity_key: str
    value: Any


def forecast_key(series_id: str, period_start: str) -> str:
    """A forecast's entity: one series in one week (its ISO start date)."""
    return f"{series_id}|{period_start}"


class ShadowRecorder(BatchWriter):
    """Shadow predictions onto ``shadow_predictions`` in batches, off the request path (a
    full queue drops a request's rows: counted in ``dropped`` and logged)."""

    def __init__(self, database: OperationalDatabase, tenant: str, **options: Any) -> None:
        super().__init__(database, ShadowPrediction, "shadow recorder", tenant, **options)

    def record(
        self,
        model_name: str,
        request_id: str,
        predictions: Sequence[Prediction],
        *,
        segment: str | None = None,
        at: datetime | None = None,
    ) -> bool:
        """Queue one request's predictions, every role's; False when they were dropped."""
        at = at or utc_now()
        return self.put(
            [
                {
                    "tenant": self.tenant,
                    "model_name": model_name,
                    "version": p.version,
                    "role": p.role.value,
                    "request_id": request_id,
                    "entity_key": p.entity_key,
                    "segment": segment or ALL_SEGMENTS,
                    "prediction": p.value,
                    "predicted_at": at,
                }
                for p in predictions
            ]
        )


def realised_demand(workspace: Workspace) -> pd.DataFrame:
    """Every product's weekly demand through the family's own SQL: all products, not only the
    top ones it trains on, since a shadow forecast may name any series a version knows."""
    return workspace_demand(workspace, top=None)


def fill_purchases(
    database: OperationalDatabase,
    tenant: str,
    person_id: str,
    skus: Sequence[str],
    at: datetime,
    window: timedelta = ATTRIBUTION_WINDOW,
) -> int:
    """Add ``skus``, bought at ``at``, to the actuals of the person's recommendations in the
    ``window`` before; the rows (of every role) filled."""
    at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    with database.session() as session:
        rows = session.scalars(
            _rows(tenant, RECOMMENDER).where(
                ShadowPrediction.entity_key == person_id,
                ShadowPrediction.predicted_at <= at,
                ShadowPrediction.predicted_at >= at - window,
            )
        ).all()
        for row in rows:
            row.actual = sorted({*(row.actual or []), *skus})
            row.actual_at = at if row.actual_at is None else max(row.actual_at, at)
        return len(rows)


def fill_demand(database: OperationalDatabase, tenant: str, demand: pd.DataFrame) -> int:
    """Fill every pending forecast whose week has ended, that is, is no later than the last
    week ``demand`` observed, with its series' quantity that week (0 where the series sold
    nothing that week); a series ``demand`` never names stays pending. The rows filled."""
    observed = demand[demand[TARGET].notna()]
    if observed.empty:
        return 0
    last = pd.Timestamp(observed[PERIOD].max()).date().isoformat()
    sold = observed.groupby([SERIES, PERIOD])[TARGET].sum()
    quantity = {
        (str(series), pd.Timestamp(week).date().isoformat()): float(value)
        for series, week, value in zip(
            sold.index.get_level_values(0), sold.index.get_level_values(1), sold, strict=True
        )
    }
    known = set(observed[SERIES].astype(str))
    now = utc_now()
    filled = 0
    with database.session() as session:
        pending = session.scalars(
            _rows(tenant, FORECASTER).where(ShadowPrediction.actual.is_(None))
        ).all()
        for row in pending:
            series, week = row.prediction["series_id"], row.prediction["period_start"]
            if week <= last and series in known:
                row.actual, row.actual_at = quantity.get((series, week), 0.0), now
                filled += 1
    return filled


def _rows(tenant: str, model_name: str) -> sa.Select[ShadowPrediction]:
    return sa.select(ShadowPrediction).where(
        ShadowPrediction.tenant == tenant, ShadowPrediction.model_name == model_name
    )
