"""Saving and loading fitted models as JSON and numpy arrays, never as pickles.

A saved model is a folder::

    settings.json   the family's settings (EstimatorSettings.to_dict)
    meta.json       format, family, class, shelfwise version, fitted time, training data
    state.json      small learned state that is not an array
    arrays.npz      learned arrays, read back with allow_pickle=False
    links.json      (optional) arrays stored once under another array's name
    text.json       (optional) text arrays stored as ASCII bytes

Loading looks the family up by name in a registry that every :class:`Estimator` subclass
with a ``family`` joins when its module is imported; the built-in families are imported on
demand, so that ``Estimator.load`` works in a fresh process. Nothing is ever unpickled, so a
model folder from an untrusted source cannot run code.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

import shelfwise

if TYPE_CHECKING:
    from shelfwise.models.base import Estimator

FORMAT = 1
FILES = ("settings.json", "meta.json", "state.json", "arrays.npz")
LINKS = "links.json"  # optional: arrays stored once under another name
TEXT = "text.json"  # optional: the text arrays stored as ASCII bytes, a quarter of their size

# Built-in families: name -> module that defines (and so registers) it.
BUILTIN_FAMILIES = {
    "identity": "shelfwise.identity.model",
    "popularity": "shelfwise.recommend.popularity",
    "buy_again": "shelfwise.recommend.buy_again",
    "ease": "shelfwise.recommend.ease",
    "trending": "shelfwise.recommend.popular",
    "item_knn": "shelfwise.recommend.item_knn",
    "als": "shelfwise.recommend.als",
    "content": "shelfwise.recommend.content",
    "recommender": "shelfwise.recommend.two_stage",
    "demand_forecaster": "shelfwise.forecast.model",
}

_registry: dict[str, type[Estimator[Any]]] = {}


def register_family(name: str, cls: type[Estimator[Any]]) -> None:
    """Make ``cls`` loadable as ``name``; called by ``Estimator.__init_subclass__``."""
    known = _registry.get(name)
    if known is not None and _qualified(known) != _qualified(cls):
        raise ValueError(f"model family {name!r} is already {_qualified(known)}")
    _registry[name] = cls


def family_class(name: str) -> type[Estimator[Any]]:
    """The class registered as family ``name``, importing a built-in family on first use."""
    if name not in _registry and name in BUILTIN_FAMILIES:
        importlib.import_module(BUILTIN_FAMILIES[name])
    if name not in _registry:
        known = ", ".join(sorted(set(_registry) | set(BUILTIN_FAMILIES)))
        raise ValueError(
            f"unknown model family {name!r}; known: {known}. "
            "Import the module that defines it before loading."
        )
    return _registry[name]


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def describe_frame(frame: pd.DataFrame) -> dict[str, Any]:
    """Rows, columns, time range and a content fingerprint: the lineage of a training frame."""
    description: dict[str, Any] = {"rows": len(frame), "columns": [str(c) for c in frame.columns]}
    for column in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[column]) and len(frame):
            description[f"{column}_min"] = frame[column].min().isoformat()
            description[f"{column}_max"] = frame[column].max().isoformat()
    try:
        hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
        description["fingerprint"] = hashlib.sha256(hashes.tobytes()).hexdigest()[:16]
    except TypeError:  # unhashable cells (lists, dicts): no fingerprint rather than no model
        description["fingerprint"] = None
    return description


def save_estimator(estimator: Estimator[Any], directory: Path) -> Path:
    arrays, state = estimator._learned()
    for name, array in arrays.items():
        if array.dtype.hasobject:
            raise TypeError(
                f"{type(estimator).__name__}: learned array {name!r} has an object dtype, which "
                "only a pickle could store; convert strings with np.asarray(values, dtype=str)"
            )
    meta = {
        "format": FORMAT,
        "family": estimator.family,
        "class": _qualified(type(estimator)),
        "shelfwise_version": shelfwise.__version__,
        "fitted_at": estimator.fitted_at_.isoformat(),
        "fit_seconds": estimator.fit_seconds_,
        "training_data": estimator.training_data_,
        "feature_versions": estimator.feature_versions,
    }
    directory.mkdir(parents=True, exist_ok=True)
    _write_json(directory / "settings.json", estimator.settings.to_dict())
    _write_json(directory / "meta.json", meta)
    _write_json(directory / "state.json", state)
    # Each distinct array once (a recommender's generators each hold the same purchase
    # history: 75 of CJ's 269 MB); links.json names the arrays stored under another's name.
    # Uncompressed: saving sits on the path of every logged run.
    arrays, text = _as_bytes(arrays)
    stored, links = _deduplicated(arrays)
    np.savez(directory / "arrays.npz", allow_pickle=False, **stored)
    if links:
        _write_json(directory / LINKS, links)
    if text:
        _write_json(directory / TEXT, {"ascii": text})
    return directory


def _as_bytes(
    arrays: dict[str, np.ndarray[Any, Any]],
) -> tuple[dict[str, np.ndarray[Any, Any]], list[str]]:
    """The arrays with every ASCII text array as bytes of the same width (numpy keeps four
    bytes a character: a million skus' codes were 40 MB, now 10), and those arrays' names."""
    out, text = dict(arrays), []
    for name, array in arrays.items():
        if array.dtype.kind != "U":
            continue
        try:
            out[name] = array.astype(f"S{max(array.dtype.itemsize // 4, 1)}")
        except UnicodeEncodeError:  # not ASCII: kept as it is
            continue
        text.append(name)
    return out, text


def _deduplicated(
    arrays: dict[str, np.ndarray[Any, Any]],
) -> tuple[dict[str, np.ndarray[Any, Any]], dict[str, str]]:
    """(the arrays to store, each distinct one under its first name; name -> stored name for
    the others)."""
    first: dict[tuple[str, tuple[int, ...], bytes], str] = {}
    stored: dict[str, np.ndarray[Any, Any]] = {}
    links: dict[str, str] = {}
    for name, array in arrays.items():
        contiguous = np.ascontiguousarray(array)
        key = (
            contiguous.dtype.str,
            contiguous.shape,
            hashlib.blake2b(contiguous.view(np.uint8).data, digest_size=20).digest()
            if contiguous.size
            else b"",
        )
        if key in first:
            links[name] = first[key]
        else:
            first[key] = name
            stored[name] = array
    return stored, links


def load_estimator(directory: Path) -> Estimator[Any]:
    missing = [name for name in FILES if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{directory} is not a saved shelfwise model: missing {missing}")
    meta = _read_json(directory / "meta.json")
    if meta.get("format") != FORMAT:
        raise ValueError(
            f"{directory}: saved model format {meta.get('format')!r}; this shelfwise reads {FORMAT}"
        )
    cls = family_class(meta["family"])
    estimator = cls(cls.settings_type.from_dict(_read_json(directory / "settings.json")))
    with np.load(directory / "arrays.npz", allow_pickle=False) as saved:
        arrays = {name: saved[name] for name in saved.files}
    if (directory / LINKS).is_file():  # each array its own copy: no model sees another's writes
        for name, target in _read_json(directory / LINKS).items():
            arrays[name] = arrays[target].copy()
    if (directory / TEXT).is_file():
        for name in _read_json(directory / TEXT)["ascii"]:
            arrays[name] = arrays[name].astype(f"U{max(arrays[name].dtype.itemsize, 1)}")
    estimator._restore(arrays, _read_json(directory / "state.json"))
    estimator.fitted_at_ = datetime.fromisoformat(meta["fitted_at"])
    estimator.fit_seconds_ = float(meta["fit_seconds"])
    estimator.training_data_ = meta["training_data"]
    estimator.feature_versions_ = dict(meta.get("feature_versions", {}))
    return estimator


def read_meta(directory: str | Path) -> dict[str, Any]:
    """meta.json of a saved model, without loading it."""
    return _read_json(Path(directory) / "meta.json")


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _read_json(path: Path) -> dict[str, Any]:
    value = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return value
