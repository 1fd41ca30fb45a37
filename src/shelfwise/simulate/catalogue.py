"""A legacy copy of the catalogue: the same products under old skus, written the old system's way.

Product matching (the catalogue's identity resolution) is scored against ``truth``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shelfwise.data.contract import get_table
from shelfwise.simulate._frames import contract_frame, numbered, objects
from shelfwise.simulate.noise import typo

# Words the old till system shortened to fit its 20-character display.
ABBREVIATIONS = {
    "ORGANIC": "ORG", "CHOCOLATE": "CHOC", "CHICKEN": "CHKN", "CHEESE": "CHS", "LARGE": "LRG",
    "SMALL": "SML", "PACK": "PK", "FROZEN": "FRZN", "WHOLE": "WHL", "BEVERAGE": "BEV",
    "VANILLA": "VAN", "STRAWBERRY": "STRWBRY", "CHERRY": "CHRY", "NATURAL": "NAT",
    "ASSORTED": "ASST", "REGULAR": "REG", "BREAD": "BRD", "CREAM": "CRM", "JUICE": "JCE",
    "POTATO": "POT", "TOMATO": "TOM", "VEGETABLE": "VEG", "SAUCE": "SCE", "COOKIES": "COOK",
}  # fmt: skip
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\.?\s*$")


@dataclass(frozen=True)
class LegacyConfig:
    """Rates of each difference between a legacy product and its current row."""

    upper_case_title: float = 0.5
    abbreviate: float = 0.6
    drop_word: float = 0.15
    title_typo: float = 0.1
    brand_variant: float = 0.3
    brand_missing: float = 0.1
    size_variant: float = 0.5
    size_missing: float = 0.1
    price_change: float = 0.5
    max_price_change: float = 0.1


@dataclass(frozen=True)
class LegacyCatalogue:
    """``products`` is a ``products`` contract frame of legacy skus; ``truth`` maps legacy_sku
    to the current sku."""

    products: pd.DataFrame
    truth: pd.DataFrame


def legacy_catalogue(
    products: pd.DataFrame, seed: int, share: float = 0.3, config: LegacyConfig | None = None
) -> LegacyCatalogue:
    """A legacy row (new sku ``L`` + 8 digits, noisy title, brand, size and price) for ``share``
    of ``products``, drawn at random."""
    if not 0.0 <= share <= 1.0:
        raise ValueError("share must lie in [0, 1]")
    config = config or LegacyConfig()
    rng = np.random.default_rng(seed)
    source = products.reset_index(drop=True)
    chosen = np.sort(rng.choice(len(source), size=round(share * len(source)), replace=False))
    rows = source.iloc[chosen].reset_index(drop=True)
    n = len(rows)
    legacy_sku = numbered("L", rng.choice(10**8, size=n, replace=False), 8)
    legacy_sku = np.where(np.isin(legacy_sku, objects(source["sku"])), legacy_sku + "X", legacy_sku)
    title = np.array([_title(t, rng, config) for t in _texts(rows, "title")], dtype=object)
    brand = np.array([_brand(b, rng, config) for b in _texts(rows, "brand")], dtype=object)
    size = np.array([_size(s, rng, config) for s in _texts(rows, "size")], dtype=object)
    change = 1 + rng.uniform(-1, 1, n) * config.max_price_change * (
        rng.random(n) < config.price_change
    )
    values: dict[str, object] = {
        c: rows[c] for c in get_table("products").column_names if c in rows.columns
    }
    values |= {
        "sku": legacy_sku,
        "title": title,
        "brand": brand,
        "size": size,
        "price": (_prices(rows) * change).round(2),
        "attributes": '{"system": "legacy_pos"}',
    }
    frame = contract_frame("products", values, n)
    truth = pd.DataFrame({"legacy_sku": legacy_sku, "sku": rows["sku"].to_numpy()}, dtype="string")
    return LegacyCatalogue(frame, truth)


def _texts(rows: pd.DataFrame, column: str) -> np.ndarray:
    """A text column's values (``None`` where missing, or all ``None`` without the column)."""
    if column not in rows.columns:
        return np.full(len(rows), None, dtype=object)
    return objects(rows[column])


def _prices(rows: pd.DataFrame) -> np.ndarray:
    if "price" not in rows.columns:
        return np.full(len(rows), np.nan)
    return rows["price"].to_numpy(dtype=float, na_value=np.nan)


def _title(title: str | None, rng: np.random.Generator, config: LegacyConfig) -> str | None:
    if title is None:
        return None
    words = title.split()
    if len(words) > 2 and rng.random() < config.drop_word:
        del words[int(rng.integers(len(words)))]
    if rng.random() < config.abbreviate:
        words = [ABBREVIATIONS.get(w.upper(), w) for w in words]
    text = " ".join(words)
    if rng.random() < config.title_typo:
        text = typo(text, rng)
    return text.upper() if rng.random() < config.upper_case_title else text


def _brand(brand: str | None, rng: np.random.Generator, config: LegacyConfig) -> str | None:
    if brand is None or rng.random() < config.brand_missing:
        return None
    if rng.random() >= config.brand_variant:
        return brand
    variants = [
        brand.upper(),
        brand.replace(" & ", " and ") if "&" in brand else brand.replace(" and ", " & "),
        re.sub(r"(?i)[,\s]+(inc|co|corp|llc)\.?$", "", brand),
        brand.replace(" ", ""),
    ]
    different = [v for v in variants if v and v != brand] or [brand.lower()]
    return different[int(rng.integers(len(different)))]


def _size(size: str | None, rng: np.random.Generator, config: LegacyConfig) -> str | None:
    if size is None or rng.random() < config.size_missing:
        return None
    match = _SIZE.match(size)
    if match is None or rng.random() >= config.size_variant:
        return size
    amount, unit = float(match[1]), match[2].upper()
    if unit == "LB" and rng.random() < 0.5:
        amount, unit = amount * 16, "OZ"
    number = f"{amount:g}"
    layouts = (f"{number}{unit.lower()}", f"{number} {unit.lower()}.", f"{number}-{unit}")
    return layouts[int(rng.integers(len(layouts)))]
