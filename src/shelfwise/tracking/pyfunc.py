"""The pyfunc loader every logged shelfwise model uses (MLflow's ``loader_module``).

A model directory holds ``meta.json`` naming its family (``"module:Class"``); the class's
``load(directory)`` rebuilds the model from JSON and ``.npz`` arrays (never a pickle), and its
``predict_frame(frame)`` answers MLflow's ``predict``.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

META_FILE = "meta.json"


class ServableModel(Protocol):
    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame: ...


class _PyfuncModel:
    def __init__(self, model: ServableModel) -> None:
        self.model = model

    def predict(self, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> Any:
        return self.model.predict_frame(model_input)


def load_model_dir(directory: str | Path) -> ServableModel:
    """Rebuild the model saved in ``directory`` through its family's ``load``."""
    directory = Path(directory)
    meta = json.loads((directory / META_FILE).read_text())
    module_name, _, class_name = str(meta["family"]).partition(":")
    family = getattr(importlib.import_module(module_name), class_name)
    model: ServableModel = family.load(directory)
    return model


def _load_pyfunc(data_path: str) -> _PyfuncModel:
    return _PyfuncModel(load_model_dir(data_path))


class RankedItems:
    """The smallest servable model: one ranking of items, served top-k to anyone.

    It is what a popularity baseline learns, and the last fallback of a recommender.
    """

    def __init__(self, items: np.ndarray, scores: np.ndarray) -> None:
        order = np.lexsort((items, -scores))
        self.items_ = items[order]
        self.scores_ = scores[order]

    @classmethod
    def from_interactions(cls, skus: pd.Series) -> RankedItems:
        counts = skus.astype(str).value_counts()
        return cls(counts.index.to_numpy(dtype=str), counts.to_numpy(dtype=float))

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(directory / "arrays.npz", items=self.items_.astype(str), scores=self.scores_)
        family = f"{type(self).__module__}:{type(self).__name__}"
        (directory / META_FILE).write_text(json.dumps({"family": family}))
        return directory

    @classmethod
    def load(cls, directory: Path) -> RankedItems:
        with np.load(directory / "arrays.npz", allow_pickle=False) as arrays:
            return cls(arrays["items"], arrays["scores"])

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        k = int(frame["k"].iloc[0]) if "k" in frame and len(frame) else 10
        persons = frame["person_id"].astype(str).to_numpy()
        top = min(k, len(self.items_))
        return pd.DataFrame(
            {
                "person_id": np.repeat(persons, top),
                "sku": np.tile(self.items_[:top], len(persons)),
                "score": np.tile(self.scores_[:top], len(persons)),
                "rank": np.tile(np.arange(1, top + 1), len(persons)),
            }
        )
