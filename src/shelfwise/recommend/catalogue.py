"""What the business rules know about each sku: hierarchy, money, sensitivity and stock.

A :class:`Catalogue` is built once from contract-shaped frames (``products``, and optionally
``inventory_snapshots`` and recent sales) and then kept current by events: one sku's stock or
price changes in place in microseconds, so an inventory or price event reaches the rules on the
next request. Lookups are vectorised: :meth:`Catalogue.index` turns an array of skus into row
positions, and every fact is an array indexed by those positions.

Unknown is not the same as zero. Stock that was never reported is NaN and means "not known to
be out of stock"; a cost that was never given makes the margin NaN, "not known to be too low".
The rules only act on what is known.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from shelfwise.data.contract.tables import SENSITIVE_CATEGORIES

Values = ArrayLike | Sequence[Any]  # one value per sku; None or NaN where unknown
_STORE_BITS = 32  # a (sku, store) stock key is sku_row << 32 | store_code
_NO_TIME = np.iinfo(np.int64).min  # a store's stock reported without a time
FEW = 128  # skus looked up one by one (a served list) rather than through an index of them


def _texts(values: pd.Series) -> NDArray[np.object_]:
    """Strings, with None where the value is missing."""
    text = values.astype("string")
    return np.asarray(text.astype(object).where(text.notna(), None).to_numpy(), dtype=object)


def _codes(*levels: NDArray[np.object_]) -> NDArray[np.int64]:
    """One integer per distinct tuple of levels; -1 where the last level is missing."""
    frame = pd.DataFrame(dict(enumerate(levels)))
    codes = frame.groupby(list(frame.columns), dropna=False, sort=True).ngroup()
    return np.where(pd.isna(levels[-1]), -1, codes.to_numpy()).astype(np.int64)


def _as_index(skus: Values | Iterable[Any]) -> pd.Index:
    if not isinstance(skus, pd.Series | pd.Index | np.ndarray):
        skus = list(cast(Iterable[Any], skus))  # a generator, a set, ...: materialised once
    index: pd.Index = pd.Index(np.asarray(skus, dtype=object), dtype=object)
    return index


def _margin_rate(price: NDArray[np.float64], margin: NDArray[np.float64]) -> NDArray[np.float64]:
    with np.errstate(divide="ignore", invalid="ignore"):
        rate: NDArray[np.float64] = np.where(price > 0, margin / price, np.nan)
    return rate


def _turnover(units_sold: NDArray[np.float64], on_hand: NDArray[np.float64]) -> NDArray[np.float64]:
    turnover: NDArray[np.float64] = units_sold / (on_hand + 1.0)
    return turnover


def _nanoseconds(at: pd.Timestamp | str) -> int:
    """Nanoseconds since the epoch, UTC; a time without a zone is taken as UTC."""
    moment = pd.Timestamp(at)
    if moment.tzinfo is None:
        moment = moment.tz_localize("UTC")
    return int(moment.value)


class Catalogue:
    """Per-sku facts the rules read, one row per sku (sorted), updatable in place.

    Arrays, indexed by the positions :meth:`index` returns: ``skus``, ``title``,
    ``department``, ``category``, ``brand``, ``sensitive_category`` (text, None where missing),
    ``category_code`` (one code per (department, category), -1 without a category),
    ``department_code`` (-1 without a department), ``price``, ``cost``, ``on_hand`` (summed
    over stores; NaN unknown) and ``units_sold`` (recent sales; NaN unknown). Derived on demand,
    so always current: :attr:`margin`, :attr:`margin_rate`, :attr:`turnover`. ``embeddings``:
    unit rows (zeros for skus without one), set by :meth:`set_embeddings`, else None.

    Updates take no lock: they assign single elements of numpy arrays, so a reader on another
    thread sees each value either before or after an update (a price and its cost may briefly
    disagree), which is all the rules need.
    """

    def __init__(
        self,
        skus: Values,
        *,
        title: Values | None = None,
        department: Values | None = None,
        category: Values | None = None,
        brand: Values | None = None,
        price: Values | None = None,
        cost: Values | None = None,
        sensitive_category: Values | None = None,
        on_hand: Values | None = None,
        units_sold: Values | None = None,
    ) -> None:
        names = pd.Series(np.asarray(skus, dtype=object))
        if names.isna().any():
            raise ValueError("sku: missing values")
        names = names.astype(str)
        if names.duplicated().any():
            repeated = sorted(set(names[names.duplicated()]))[:5]
            raise ValueError(f"sku: each sku must appear once, repeated: {repeated}")
        order = np.argsort(names.to_numpy(), kind="stable")
        n = len(order)

        def text(values: Values | None) -> NDArray[np.object_]:
            if values is None:
                return np.full(n, None, dtype=object)
            return _texts(pd.Series(np.asarray(values, dtype=object)[order]))

        def number(values: Values | None, what: str) -> NDArray[np.float64]:
            if values is None:
                return np.full(n, np.nan)
            out = pd.to_numeric(pd.Series(np.asarray(values, dtype=object)[order]), errors="raise")
            array = out.to_numpy(dtype=np.float64, na_value=np.nan)
            if np.any(array < 0) or np.any(np.isinf(array)):
                raise ValueError(f"{what}: values must be finite numbers >= 0 (or missing)")
            return array

        self.skus: NDArray[np.str_] = names.to_numpy(dtype=str)[order]
        self.title = text(title)
        self.department = text(department)
        self.category = text(category)
        self.brand = text(brand)
        self.sensitive_category = text(sensitive_category)
        unknown = set(self.sensitive_category[pd.notna(self.sensitive_category)])
        unknown -= set(SENSITIVE_CATEGORIES)
        if unknown:
            raise ValueError(
                f"sensitive_category: {sorted(unknown)} not among {list(SENSITIVE_CATEGORIES)}"
            )
        self.department_code = _codes(self.department)
        self.category_code = _codes(self.department, self.category)
        self.price = number(price, "price")
        self.cost = number(cost, "cost")
        self.on_hand = number(on_hand, "on_hand")
        self.units_sold = number(units_sold, "units_sold")
        self.embeddings: NDArray[np.float32] | None = None
        self._masks: dict[tuple[str, tuple[str, ...]], NDArray[np.bool_]] = {}
        self._index = pd.Index(self.skus.astype(object), dtype=object)
        # Per-store stock, kept only where it was reported per store: sorted keys, so that
        # one sku's stores are contiguous and its total is one slice sum.
        self._stores: dict[str, int] = {}
        self._stock_key = np.zeros(0, dtype=np.int64)
        self._stock_on_hand = np.zeros(0, dtype=np.float64)
        self._stock_at = np.zeros(0, dtype=np.int64)

    @classmethod
    def from_frame(
        cls,
        products: pd.DataFrame,
        inventory: pd.DataFrame | None = None,
        sales: pd.DataFrame | None = None,
    ) -> Catalogue:
        """From a ``products`` frame (``sku`` required; ``title``, ``department``,
        ``category``, ``brand``, ``price``, ``cost``, ``sensitive_category`` where present),
        optionally ``inventory_snapshots`` (``sku``, ``on_hand``; the latest ``snapshot_at``
        per ``store_id`` and sku counts, summed over stores) and recent ``sales`` (``sku`` and
        an optional ``quantity``, one row per line sold in the window the caller chose).

        Skus of inventory or sales that are not products are ignored. Without inventory every
        stock is unknown; with it, a sku that no store reported is unknown too. Without sales
        the turnover is unknown; with them, a sku that did not sell sold 0 units.
        """
        if "sku" not in products.columns:
            raise ValueError("products: missing columns ['sku']")

        def column(name: str) -> pd.Series | None:
            return products[name] if name in products.columns else None

        catalogue = cls(
            products["sku"],
            title=column("title"),
            department=column("department"),
            category=column("category"),
            brand=column("brand"),
            price=column("price"),
            cost=column("cost"),
            sensitive_category=column("sensitive_category"),
        )
        if inventory is not None:
            catalogue._load_inventory(inventory)
        if sales is not None:
            if "sku" not in sales.columns:
                raise ValueError("sales: missing columns ['sku']")
            rows = catalogue.index(sales["sku"])
            quantity = np.ones(len(sales))
            if "quantity" in sales.columns:
                quantity = sales["quantity"].to_numpy(dtype=np.float64, na_value=np.nan)
                quantity = np.nan_to_num(quantity, nan=0.0)
            known = rows >= 0
            catalogue.units_sold = np.bincount(
                rows[known], weights=quantity[known], minlength=len(catalogue)
            ).astype(np.float64)
        return catalogue

    def _load_inventory(self, inventory: pd.DataFrame) -> None:
        missing = [c for c in ("sku", "on_hand") if c not in inventory.columns]
        if missing:
            raise ValueError(f"inventory: missing columns {missing}")
        on_hand = inventory["on_hand"].to_numpy(dtype=np.float64, na_value=np.nan)
        if not np.all(np.isfinite(on_hand) & (on_hand >= 0)):
            raise ValueError("on_hand: every value must be a finite number >= 0")
        stores = (
            inventory["store_id"].astype("string").fillna("")
            if "store_id" in inventory.columns
            else pd.Series("", index=inventory.index, dtype="string")
        )
        store_codes, store_names = pd.factorize(stores, sort=True)
        self._stores = {str(name): code for code, name in enumerate(store_names)}
        rows = self.index(inventory["sku"])
        at = np.full(len(inventory), _NO_TIME, dtype=np.int64)
        if "snapshot_at" in inventory.columns:
            times = pd.to_datetime(inventory["snapshot_at"], utc=True)
            at = np.where(times.isna(), _NO_TIME, times.to_numpy(dtype="datetime64[ns]").view("i8"))
        keep = rows >= 0
        keys = (rows[keep] << _STORE_BITS) | store_codes[keep].astype(np.int64)
        # The latest snapshot per key wins; among equal times, the later row.
        order = np.lexsort((np.arange(keep.sum()), at[keep], keys))
        keys, at_kept, stock = keys[order], at[keep][order], on_hand[keep][order]
        last = np.append(keys[1:] != keys[:-1], True)
        self._stock_key, self._stock_at, self._stock_on_hand = (
            keys[last],
            at_kept[last],
            stock[last],
        )
        totals = np.bincount(
            self._stock_key >> _STORE_BITS, weights=self._stock_on_hand, minlength=len(self)
        )
        reported = np.bincount(self._stock_key >> _STORE_BITS, minlength=len(self)) > 0
        self.on_hand = np.where(reported, totals, np.nan)

    def __len__(self) -> int:
        return len(self.skus)

    def __contains__(self, sku: object) -> bool:
        return sku in self._index

    def sensitive_beyond(self, allowed: tuple[str, ...]) -> NDArray[np.bool_]:
        """Per sku: of a sensitive category that is not in ``allowed``."""
        return self._mask("sensitive", allowed)

    def in_categories(self, names: tuple[str, ...]) -> NDArray[np.bool_]:
        """Per sku: its department or its category is one of ``names``."""
        return self._mask("categories", names)

    def _mask(self, what: str, names: tuple[str, ...]) -> NDArray[np.bool_]:
        """Masks over the hierarchy and sensitivity, which never change once the catalogue is
        built: computed once per ``names`` (a million skus' text compared on every request
        cost more than the rest of a fallback's answer)."""
        mask = self._masks.get((what, names))
        if mask is None:
            if what == "sensitive":
                sensitive = self.sensitive_category
                mask = pd.notna(sensitive) & ~np.isin(sensitive.astype(str), list(names))
            else:
                mask = np.isin(self.department, list(names)) | np.isin(self.category, list(names))
            mask = np.asarray(mask, dtype=bool)
            self._masks[(what, names)] = mask
        return mask

    def index(self, skus: Values | Iterable[Any]) -> NDArray[np.int64]:
        """Row position of each sku; -1 for a sku the catalogue does not know."""
        if isinstance(skus, list) and len(skus) <= FEW:
            # A served list (a cached answer's check): a hash lookup per sku costs a
            # tenth of building an index of the few skus asked for.
            return np.fromiter((self._position(sku) for sku in skus), np.int64, len(skus))
        rows: NDArray[np.int64] = self._index.get_indexer(_as_index(skus)).astype(np.int64)
        return rows

    def _position(self, sku: Any) -> int:
        try:
            row = self._index.get_loc(sku)
        except (KeyError, TypeError, pd.errors.InvalidIndexError):  # unknown, or unhashable
            return -1
        return row if isinstance(row, int) else -1  # the index is unique: never a slice

    def _row(self, sku: str) -> int:
        row = self._position(sku)
        if row < 0:
            raise KeyError(f"sku {sku!r} is not in the catalogue; rebuild it from products")
        return row

    @property
    def margin(self) -> NDArray[np.float64]:
        """Unit margin, price - cost; NaN where either is unknown."""
        margin: NDArray[np.float64] = self.price - self.cost
        return margin

    @property
    def margin_rate(self) -> NDArray[np.float64]:
        """Margin as a share of the price; NaN where unknown or the price is 0."""
        return _margin_rate(self.price, self.margin)

    @property
    def turnover(self) -> NDArray[np.float64]:
        """Recent units sold per unit of stock, ``units_sold / (on_hand + 1)`` (the 1 keeps
        a sold-out sku finite); NaN where sales or stock are unknown."""
        return _turnover(self.units_sold, self.on_hand)

    def facts(self, skus: Values | Iterable[Any]) -> pd.DataFrame:
        """One row per sku asked for, in that order, with every fact (NaN/None if unknown).
        Margins and turnover are derived for the rows asked for alone, not the catalogue."""
        wanted = _as_index(skus)
        rows = self._index.get_indexer(wanted)
        known = rows >= 0
        at = np.where(known, rows, 0)

        def pick(values: NDArray[Any]) -> NDArray[Any]:
            picked = values[at].copy()
            picked[~known] = None if values.dtype == object else np.nan
            return picked

        price, cost, on_hand = pick(self.price), pick(self.cost), pick(self.on_hand)
        margin = price - cost
        return pd.DataFrame(
            {
                "sku": wanted.to_numpy(),
                "title": pick(self.title),
                "department": pick(self.department),
                "category": pick(self.category),
                "brand": pick(self.brand),
                "price": price,
                "cost": cost,
                "margin": margin,
                "margin_rate": _margin_rate(price, margin),
                "sensitive_category": pick(self.sensitive_category),
                "on_hand": on_hand,
                "turnover": _turnover(pick(self.units_sold), on_hand),
            }
        )

    def update_price(self, sku: str, price: float, *, cost: float | None = None) -> None:
        """Set one sku's price (and cost, when given; else the cost stays)."""
        row = self._row(sku)
        for name, value in (("price", price), ("cost", cost)):
            if value is not None and not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
        self.price[row] = price
        if cost is not None:
            self.cost[row] = cost

    def update_stock(
        self,
        sku: str,
        on_hand: float,
        *,
        store_id: str | None = None,
        at: pd.Timestamp | str | None = None,
    ) -> bool:
        """Set one sku's stock; True if applied, False if older than what is already known.

        With ``store_id``, the store's stock is replaced and the sku's total is re-summed over
        its stores, as an ``inventory_snapshots`` row would; ``at`` (its ``snapshot_at``) lets
        a late, out-of-order event be ignored. Without ``store_id`` the chain-wide total is set
        (for sources that only report totals) and the per-store detail of the sku is dropped.
        """
        row = self._row(sku)
        if not (np.isfinite(on_hand) and on_hand >= 0):
            raise ValueError(f"on_hand: expected a finite number >= 0, got {on_hand!r}")
        low, high = np.searchsorted(self._stock_key, [row << _STORE_BITS, (row + 1) << _STORE_BITS])
        if store_id is None:
            stores = slice(low, high)
            self._stock_key = np.delete(self._stock_key, stores)
            self._stock_on_hand = np.delete(self._stock_on_hand, stores)
            self._stock_at = np.delete(self._stock_at, stores)
            self.on_hand[row] = on_hand
            return True
        store = self._stores.setdefault(str(store_id), len(self._stores))
        key = (row << _STORE_BITS) | store
        stamp = _NO_TIME if at is None else _nanoseconds(at)
        position = int(np.searchsorted(self._stock_key, key))
        if position < len(self._stock_key) and self._stock_key[position] == key:
            if at is not None and stamp < self._stock_at[position]:
                return False
            self._stock_on_hand[position] = on_hand
            if at is not None:
                self._stock_at[position] = stamp
        else:  # a store reporting this sku for the first time: the one copying update
            self._stock_key = np.insert(self._stock_key, position, key)
            self._stock_on_hand = np.insert(self._stock_on_hand, position, on_hand)
            self._stock_at = np.insert(self._stock_at, position, stamp)
            high += 1
        self.on_hand[row] = self._stock_on_hand[low:high].sum()
        return True

    def set_embeddings(self, skus: Values, vectors: ArrayLike) -> None:
        """Item vectors for the cosine similarity of diversity; skus without one get zeros
        (similar to nothing). Rows are normalised to unit length here, once."""
        values = np.asarray(vectors, dtype=np.float64)
        rows = self.index(np.asarray(skus))
        if values.ndim != 2 or len(values) != len(rows):
            raise ValueError("vectors: expected one row per sku")
        norms = np.linalg.norm(values, axis=1)
        if not np.all(np.isfinite(values)) or np.any(norms == 0):
            raise ValueError("vectors: every row must be finite and non-zero (cosine needs it)")
        unit = np.zeros((len(self), values.shape[1]), dtype=np.float32)
        known = rows >= 0
        unit[rows[known]] = values[known] / norms[known, None]
        self.embeddings = unit
