"""MovieLens 100K: explicit ratings, the academic reference for recommenders.

GroupLens forbids redistribution: the files are read from the datasets folder at run time and
never copied into the project.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pandas as pd

from shelfwise.datasets._frames import contract_frame, json_records, read_csv_typed
from shelfwise.datasets.registry import dataset_file

MOVIELENS_SOURCE_SYSTEM = "movielens"
INTERACTION_DTYPES = {
    "user_id": "int64",
    "item_id": "int64",
    "rating": "int64",
    "timestamp": "int64",
}
ITEM_DTYPES = {
    "item_id": "int64",
    "movie_title": "string",
    "release_year": "float64",
    "class": "string",
}
USER_DTYPES = {
    "user_id": "int64",
    "age": "int64",
    "gender": "string",
    "occupation": "string",
    "zip_code": "string",
}


class MovieLens(NamedTuple):
    """Ratings (``user_id``, ``item_id``, ``rating`` 1-5, unix ``timestamp``), movies, users."""

    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame


def load_movielens_100k(datasets_dir: Path | str | None = None) -> MovieLens:
    """100,000 ratings by 943 users on 1,682 movies, in file order (splits depend on it).

    Items: ``movie_title`` (year removed), ``release_year`` (missing for 2 movies), ``class``
    (space-separated genres). Users: ``age``, ``gender``, ``occupation``, ``zip_code`` (text).
    """

    def read(file: str, dtypes: dict[str, str]) -> pd.DataFrame:
        return read_csv_typed(dataset_file("movielens_100k", file, datasets_dir), dtypes)

    return MovieLens(
        interactions=read("ml-100k.inter.csv.gz", INTERACTION_DTYPES),
        items=read("ml-100k.item.csv.gz", ITEM_DTYPES),
        users=read("ml-100k.user.csv.gz", USER_DTYPES),
    )


def movielens_to_events(interactions: pd.DataFrame) -> pd.DataFrame:
    """Ratings as contract ``events``: each rating is a ``view`` with the rating in ``context``.

    The contract has no rating event: a rating says the user saw the movie, so ``view`` is the
    honest type, and ``context`` keeps ``{"rating": r}`` for explicit-feedback models.
    ``event_id`` is ``ml100k-<user>-<item>`` (a user rates a movie once); ``occurred_at`` is
    the unix timestamp as naive UTC; ``customer_ref`` the user id; ``sku`` the item id, which
    matches :func:`movielens_to_products`.
    """
    users = interactions["user_id"].astype("string")
    items = interactions["item_id"].astype("string")
    values = {
        "event_id": "ml100k-" + users + "-" + items,
        "occurred_at": pd.to_datetime(interactions["timestamp"], unit="s"),
        "source_system": MOVIELENS_SOURCE_SYSTEM,
        "event_type": "view",
        "customer_ref": users,
        "sku": items,
        "context": json_records(interactions[["rating"]]),
    }
    return contract_frame("events", values, len(interactions))


def movielens_to_products(items: pd.DataFrame) -> pd.DataFrame:
    """Movies as contract ``products``: ``sku`` = item id, ``title``, ``category`` = genres.

    Genres are joined with ``|`` (``Animation|Children's|Comedy``; MovieLens has a genre
    called ``unknown``). ``attributes`` keeps ``release_year`` and the genre list; no launch
    date is invented from the year.
    """
    genres = items["class"].astype("string").str.split(" ")
    release_year = items["release_year"].astype("Int64")
    attributes = pd.DataFrame({"release_year": release_year, "genres": genres})
    values = {
        "sku": items["item_id"].astype("string"),
        "title": items["movie_title"],
        "category": genres.str.join("|"),
        "attributes": json_records(attributes),
    }
    return contract_frame("products", values, len(items))
