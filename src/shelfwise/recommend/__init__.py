"""Recommendations: who should see which skus next.

:class:`PopularityRecommender` is the reference every other recommender is measured against
and the fallback served when they cannot answer.
"""

from __future__ import annotations

from shelfwise.recommend.popularity import PopularityRecommender, PopularitySettings

__all__ = ["PopularityRecommender", "PopularitySettings"]
