"""Shadow tests: challengers and experimental versions scored on live traffic, judged later.

The serving layer (:mod:`shelfwise.serve.shadow`) answers each request with the champion and
then, in the background, asks the same of the shadow versions; every answer is a
``shadow_predictions`` row (one per role and entity, all stamped with the request's id and
time), written through :class:`ShadowRecorder`: a bounded queue and a writer thread, so that a
slow database costs shadow rows (counted, logged), never a response.

Actuals arrive later and fill every role's row of an entity alike
(:mod:`~shelfwise.lifecycle.shadow.records`):

- recommender: the skus the person bought within ``ATTRIBUTION_WINDOW`` (7 days) after the
  recommendation (:meth:`ShadowTests.record_purchases`, fed by the purchase events);
- forecaster: the quantity sold of the series in the forecast's week, read through the
  family's own demand SQL (:func:`realised_demand`), for every pending forecast whose week has
  ended (:meth:`ShadowTests.record_demand`).

:meth:`ShadowTests.compare` pairs the champion's and the tested version's predictions of the
same request and entity, so that both are judged on the same samples and their counts are
equal (:mod:`~shelfwise.lifecycle.shadow.comparison`). :meth:`ShadowTests.complete` closes a
test once it has ``min_samples`` paired samples, or on demand: the comparison goes on the
experiment's results where the version belongs to one in shadow_testing, always into the
audit log, and one ``shadow_test_complete`` alert links to the version's review.
"""

from __future__ import annotations

from shelfwise.lifecycle.shadow.comparison import COMPARISON_WINDOW, MIN_SAMPLES, SCORING
from shelfwise.lifecycle.shadow.completion import ShadowTests
from shelfwise.lifecycle.shadow.records import (
    ATTRIBUTION_WINDOW,
    Prediction,
    ShadowRecorder,
    forecast_key,
    realised_demand,
)

__all__ = [
    "ATTRIBUTION_WINDOW",
    "COMPARISON_WINDOW",
    "MIN_SAMPLES",
    "SCORING",
    "Prediction",
    "ShadowRecorder",
    "ShadowTests",
    "forecast_key",
    "realised_demand",
]
