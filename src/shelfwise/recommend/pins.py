"""The merchandisers' pins in a decision: linked to the candidates they name, and placed at
their 1-based positions in the final lists (:func:`shelfwise.recommend.rules.apply_rules`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from shelfwise.recommend.catalogue import Catalogue
from shelfwise.recommend.matrix import group_positions
from shelfwise.recommend.overrides import Overrides


def linked_pins(
    person: NDArray[np.int64],
    item: NDArray[np.int64],
    persons: NDArray[np.object_],
    catalogue: Catalogue,
    overrides: Overrides,
) -> tuple[NDArray[np.int64], pd.DataFrame]:
    """Each candidate row's pinned position (0: none), and the pins that are no candidate's
    (a sku the catalogue lacks included), which become rows of their own."""
    if not overrides.pins and not overrides.person_pins:  # the usual case: nothing to link
        return np.zeros(len(person), dtype=np.int64), NO_PINS
    pins = _pins(overrides, persons, catalogue)
    stride = len(catalogue) + 1
    linkable = pins[pins["item"] >= 0]
    link_keys = pd.Index(linkable["person"] * stride + linkable["item"], dtype=np.int64)
    link = np.where(item >= 0, link_keys.get_indexer(pd.Index(person * stride + item)), -1)
    pin = np.append(linkable["position"].to_numpy(np.int64), 0)[link]  # -1 picks the 0
    return pin, pins.drop(index=linkable.index[np.unique(link[link >= 0])])


NO_PINS = pd.DataFrame(
    {
        "person": np.empty(0, np.int64),
        "sku": np.empty(0, object),
        "position": np.empty(0, np.int64),
        "item": np.empty(0, np.int64),
    }
)


def _pins(overrides: Overrides, persons: NDArray[np.object_], catalogue: Catalogue) -> pd.DataFrame:
    """Each person's pins (person code, sku, catalogue row, position); their own pin of a sku
    replaces the global one."""
    code = {person: i for i, person in enumerate(persons)}
    everyone = [(p, sku, at, 0) for p in range(len(persons)) for sku, at in overrides.pins.items()]
    own = [
        (code[person], sku, at, 1)
        for person, pins in overrides.person_pins.items()
        if person in code
        for sku, at in pins.items()
    ]
    frame = pd.DataFrame(everyone + own, columns=["person", "sku", "position", "level"])
    frame = frame.sort_values("level", kind="stable").drop_duplicates(
        ["person", "sku"], keep="last"
    )
    frame = frame.astype({"person": np.int64, "sku": object, "position": np.int64})
    return frame.assign(item=catalogue.index(frame["sku"].astype(str))).reset_index(drop=True)


def place_pins(
    chosen: NDArray[np.int64],
    pins: NDArray[np.int64],
    item: NDArray[np.int64],
    pin: NDArray[np.int64],
    person: NDArray[np.int64],
    k: int,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Rows of the final lists in (person, rank) order, and the pins that fall beyond k.
    ``chosen``: rows per person (persons x k, -1 past a short list); ``pins``: the pinned
    rows; ``item``, ``pin``, ``person``: every row's catalogue row, pinned position and person.

    Pins of one person sorted by (position, sku) land at e_j = max(position_j, e_(j-1) + 1),
    so e_j - j is the running maximum of position_j - j; the r-th chosen item then lands at
    the r-th position no pin holds, r + #{j: e_j - j <= r}.
    """
    if not len(pins):  # the usual case: the chosen rows, person by person, as they are
        return chosen[chosen >= 0], pins
    order = np.lexsort((item[pins], pin[pins], person[pins]))
    pins = pins[order]
    owner = person[pins]
    starts = np.searchsorted(owner, owner, side="left")
    j = np.arange(len(pins)) - starts
    shifted = pd.Series(pin[pins] - j).groupby(owner).cummax().to_numpy(np.int64)
    landing = shifted + j
    beyond = landing > k
    dropped, kept = pins[beyond], ~beyond
    pins, owner, shifted, landing = pins[kept], owner[kept], shifted[kept], landing[kept]

    at_person, rank = np.nonzero(chosen >= 0)
    stride = k + 2
    keys = owner * stride + shifted  # sorted: by owner, then non-decreasing shifted
    r = rank + 1
    before = np.searchsorted(keys, at_person * stride + r, side="right") - np.searchsorted(
        keys, at_person * stride, side="right"
    )
    everyone = np.concatenate([chosen[at_person, rank], pins])
    landing = np.concatenate([r + before, landing])
    who = np.concatenate([at_person, owner])
    order = np.lexsort((landing, who))
    final, who = everyone[order], who[order]
    position = group_positions(who)
    return final[position < k], dropped
