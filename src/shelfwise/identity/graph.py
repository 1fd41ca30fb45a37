"""From scored record pairs to persons whose ids survive re-runs and reviewer decisions.

The resolver scores pairs of customer records; this module decides who is one person. A person id
is what every downstream table (households, baskets, recommendations) joins on, so it must not
churn: a record keeps its person id from run to run unless the graph really changed, a merge keeps
the oldest id, and a reviewer's "confirm" or "split" holds on every later run because the
decisions log is replayed each time.

Everything runs on integer codes (records sorted by ``unique_id``, so code order *is* id order)
with numpy and ``scipy.sparse.csgraph``; Python loops only over the few components that hold a
violated split decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = [
    "PERSON_ID_PREFIX",
    "Clustering",
    "cluster_records",
    "next_person_sequence",
    "pairs_within",
]

PERSON_ID_PREFIX = "P"
_DIGITS = 9
_DECISIONS = frozenset({"confirm", "split"})
_EXAMPLES = 5

Ints = NDArray[np.int64]
Floats = NDArray[np.float64]


@dataclass(frozen=True)
class Clustering:
    """One run's persons, and what changed against the previous run.

    ``assignments`` has one row per record, sorted by ``unique_id``. ``splits`` has a row per
    previous person and component that took some of its records away from the person's home
    (``new_person_id`` is that component's id, new or not); ``new_persons`` lists only persons
    none of whose records had an id before. ``cut_edges.because`` names the split pair as
    ``"split <unique_id> / <unique_id>"``.

    ``next_sequence`` is the first sequence number the next run may issue. Keep it: an id that
    was absorbed by a merge, or whose records all vanished, is no longer in ``assignments``, and
    only this high-water mark stops it being issued again to somebody else.
    """

    assignments: pd.DataFrame
    merges: pd.DataFrame
    splits: pd.DataFrame
    new_persons: pd.DataFrame
    cut_edges: pd.DataFrame
    components: int
    next_sequence: int


def cluster_records(
    record_ids: pd.Series,
    edges: pd.DataFrame,
    *,
    threshold: float = 0.5,
    decisions: pd.DataFrame | None = None,
    previous: pd.DataFrame | None = None,
    first_sequence: int | None = None,
) -> Clustering:
    """Group this run's records into persons, keeping the person ids of ``previous``.

    An edge is accepted when its (maximum) ``match_probability`` is at least ``threshold``; every
    ``confirm`` decision adds an edge and every ``split`` decision removes one and is enforced as
    a cannot-link: where the two records are still connected through other records, the weakest
    edge of the maximum spanning forest path between them is cut, until they are apart.
    Confirmed edges outrank any probability, so one is cut only when a path of confirmed edges
    joins a split pair: the reviewer contradicted themself, and the split (the safer error: two
    ids for one person, rather than one id for two) wins over the weakest confirmed edge.

    Decisions naming records absent from this run are skipped: the log outlives records. New ids
    continue from the highest id in ``previous`` or from ``first_sequence``, whichever is higher.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    if first_sequence is not None and first_sequence < 1:
        raise ValueError(f"first_sequence must be at least 1, got {first_sequence}")
    uids = _sorted_record_ids(record_ids)
    index = pd.Index(uids)
    n = len(uids)
    left, right, probability = _scored_pairs(index, edges)
    scored = left * n + right
    confirm, split = _decided_pairs(index, decisions)

    accepted = probability >= threshold
    if split.size:
        accepted &= ~np.isin(scored, split)
    edge_l = np.concatenate([left[accepted], confirm // n])
    edge_r = np.concatenate([right[accepted], confirm % n])
    labels = _components(n, edge_l, edge_r)

    cut_keys, cut_prob = np.empty(0, np.int64), np.empty(0, np.float64)
    because: list[str] = []
    if split.size and (labels[split // n] == labels[split % n]).any():
        violated = split[labels[split // n] == labels[split % n]]
        cut_keys, cut_prob, because = _enforce_splits(
            uids, labels, scored, probability, edge_l * n + edge_r, confirm, violated
        )
        keep = ~np.isin(edge_l * n + edge_r, cut_keys)
        labels = _components(n, edge_l[keep], edge_r[keep])

    # Number components by their smallest record: codes are in unique_id order, so the order of
    # first appearance is that order. New ids are issued in it, which makes runs reproducible.
    first = np.asarray(pd.unique(labels), dtype=np.int64)
    renumber = np.empty(len(first), dtype=np.int64)
    renumber[first] = np.arange(len(first), dtype=np.int64)
    labels = renumber[labels]

    floor = 1 if first_sequence is None else first_sequence
    people = _assign_person_ids(index, labels, len(first), previous, floor)
    return Clustering(
        assignments=_frame(unique_id=uids, person_id=people.component_ids[labels]),
        merges=people.merges,
        splits=people.splits,
        new_persons=people.new_persons,
        cut_edges=_frame(
            unique_id_l=uids[cut_keys // max(n, 1)],
            unique_id_r=uids[cut_keys % max(n, 1)],
            match_probability=cut_prob,
            because=np.asarray(because, dtype=object),
        ),
        components=len(first),
        next_sequence=people.next_sequence,
    )


def pairs_within(assignments: pd.DataFrame) -> int:
    """How many record pairs the clusters imply: the sum over persons of n·(n-1)/2.

    It is the number a pairwise evaluation compares against the labelled pairs.
    """
    sizes = assignments["person_id"].value_counts().to_numpy(dtype=np.int64)
    return int((sizes * (sizes - 1) // 2).sum())


def next_person_sequence(person_ids: pd.Series) -> int:
    """The next sequence number to issue after ``person_ids`` (1 when there are none).

    Raises ``ValueError`` on an id that is not ``PERSON_ID_PREFIX`` plus a zero-padded number,
    because two spellings of one number (``P1``, ``P000000001``) would be two persons.
    """
    sequences = _parse_person_ids(np.asarray(pd.unique(person_ids.to_numpy(dtype=object))))
    return int(sequences.max()) + 1 if sequences.size else 1


@dataclass(frozen=True)
class _People:
    component_ids: NDArray[np.object_]
    merges: pd.DataFrame
    splits: pd.DataFrame
    new_persons: pd.DataFrame
    next_sequence: int


def _sorted_record_ids(record_ids: pd.Series) -> NDArray[np.object_]:
    if record_ids.isna().any():
        raise ValueError("record_ids holds missing values")
    # Fixed-width unicode sorts several times faster than Python objects.
    uids = np.sort(record_ids.to_numpy(dtype=str)).astype(object)
    repeated = uids[1:][uids[1:] == uids[:-1]]
    if repeated.size:
        raise ValueError(
            f"record_ids repeats {len(np.unique(repeated))} ids, "
            f"e.g. {repeated[:_EXAMPLES].tolist()}"
        )
    return uids


def _codes(index: pd.Index, values: pd.Series | NDArray[np.object_]) -> Ints:
    """Record codes of ``values``; -1 for an id that is not in this run."""
    target = pd.Index(np.asarray(values, dtype=object), dtype=object)
    return index.get_indexer(target).astype(np.int64)


def _require(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing}")


def _starts(*columns: Ints) -> NDArray[np.bool_]:
    """True where a run of equal rows begins in rows sorted by ``columns``."""
    starts = np.zeros(len(columns[0]), dtype=bool)
    starts[:1] = True
    for values in columns:
        starts[1:] |= values[1:] != values[:-1]
    return starts


def _scored_pairs(index: pd.Index, edges: pd.DataFrame) -> tuple[Ints, Ints, Floats]:
    """Edges as (smaller code, larger code, probability), self-pairs dropped."""
    _require(edges, ("unique_id_l", "unique_id_r", "match_probability"), "edges")
    names = np.concatenate(
        [edges["unique_id_l"].to_numpy(dtype=object), edges["unique_id_r"].to_numpy(dtype=object)]
    )
    codes = _codes(index, names)
    if (codes < 0).any():
        unknown = np.unique(names[codes < 0].astype(str))
        raise ValueError(
            f"edges name {len(unknown)} records that are not in record_ids "
            f"({int((codes < 0).reshape(2, -1).any(axis=0).sum())} edges), "
            f"e.g. {unknown[:_EXAMPLES].tolist()}"
        )
    left, right = codes[: len(edges)], codes[len(edges) :]
    probability = edges["match_probability"].to_numpy(dtype=np.float64)
    invalid = ~((probability >= 0.0) & (probability <= 1.0))
    if invalid.any():
        raise ValueError(
            f"{int(invalid.sum())} match probabilities are missing or outside [0, 1], "
            f"e.g. {probability[invalid][:_EXAMPLES].tolist()}"
        )
    distinct = left != right
    low = np.minimum(left, right)[distinct]
    high = np.maximum(left, right)[distinct]
    return low, high, probability[distinct]


def _decided_pairs(index: pd.Index, decisions: pd.DataFrame | None) -> tuple[Ints, Ints]:
    """Pair keys (low * n + high) of the standing confirm and split decisions."""
    if decisions is None or decisions.empty:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    _require(decisions, ("unique_id_l", "unique_id_r", "decision"), "decisions")
    unexpected = set(decisions["decision"].unique()) - _DECISIONS
    if unexpected:
        raise ValueError(f"decision must be one of {sorted(_DECISIONS)}, got {unexpected}")
    left = _codes(index, decisions["unique_id_l"])
    right = _codes(index, decisions["unique_id_r"])
    n = len(index)
    standing = pd.DataFrame(
        {
            "key": np.minimum(left, right) * n + np.maximum(left, right),
            "decision": decisions["decision"].to_numpy(dtype=object),
        }
    )
    # The log is in time order: a later decision on a pair replaces an earlier one.
    standing = standing[(left >= 0) & (right >= 0) & (left != right)]
    standing = standing.drop_duplicates("key", keep="last")
    keys = standing["key"].to_numpy(dtype=np.int64)
    is_split = (standing["decision"] == "split").to_numpy()
    return np.sort(keys[~is_split]), np.sort(keys[is_split])


def _components(n: int, left: Ints, right: Ints) -> Ints:
    if n == 0:
        return np.empty(0, np.int64)
    graph = coo_matrix((np.ones(len(left), np.int8), (left, right)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=False)
    return np.asarray(labels, dtype=np.int64)


def _enforce_splits(
    uids: NDArray[np.object_],
    labels: Ints,
    scored: Ints,
    probability: Floats,
    accepted: Ints,
    confirm: Ints,
    violated: Ints,
) -> tuple[Ints, Floats, list[str]]:
    """Cut edges until no split pair shares a component: the cut keys, scores and reasons."""
    n = len(uids)
    special = np.unique(labels[violated // n])
    keys = np.unique(accepted[np.isin(labels[accepted // n], special)])
    # The best score of each pair; a confirm that was never scored has none (NaN).
    mine = np.isin(scored, keys)
    best = pd.Series(probability[mine]).groupby(scored[mine]).max()
    prob = np.asarray(best.reindex(keys), dtype=np.float64)
    confirmed = np.isin(keys, confirm)
    component = labels[keys // n]
    # Strongest first: confirmed, then probability (an unscored confirm is the weakest
    # confirmed), then the pair key, so that equal probabilities still break the same way.
    order = np.lexsort((keys, -np.nan_to_num(prob, nan=0.0), ~confirmed, component))
    keys, prob, component = keys[order], prob[order], component[order]
    bounds = np.searchsorted(component, special, side="left")
    ends = np.searchsorted(component, special, side="right")
    pair_component = labels[violated // n]

    cut_positions: list[int] = []
    because: list[str] = []
    for label, start, end in zip(special.tolist(), bounds.tolist(), ends.tolist(), strict=True):
        edge_keys = keys[start:end]
        pairs = violated[pair_component == label]
        nodes = np.unique(np.concatenate([edge_keys // n, edge_keys % n]))
        local_l = np.searchsorted(nodes, edge_keys // n)
        local_r = np.searchsorted(nodes, edge_keys % n)
        pair_l = np.searchsorted(nodes, pairs // n)
        pair_r = np.searchsorted(nodes, pairs % n)
        for edge, pair in _cut_until_apart(len(nodes), local_l, local_r, pair_l, pair_r):
            cut_positions.append(start + edge)
            because.append(f"split {uids[pairs[pair] // n]} / {uids[pairs[pair] % n]}")

    cut = np.asarray(cut_positions, dtype=np.int64)
    return keys[cut], prob[cut], because


def _cut_until_apart(
    size: int, left: Ints, right: Ints, pair_l: Ints, pair_r: Ints
) -> list[tuple[int, int]]:
    """(edge, pair) cuts that leave every pair apart; edges come strongest first.

    The weakest edge on the maximum spanning forest path between u and v is the edge whose
    addition first connects u and v when edges are added strongest first (Kruskal). With a strict
    order the forest is unique, so a binary search over edge prefixes finds that edge with a few
    C-level connected-components calls rather than a Python walk of the tree.
    """
    alive = np.ones(len(left), dtype=bool)
    cuts: list[tuple[int, int]] = []
    while True:
        labels = _components(size, left[alive], right[alive])
        violated = np.flatnonzero(labels[pair_l] == labels[pair_r])
        if not violated.size:
            return cuts
        pair = int(violated[0])
        u, v = pair_l[pair], pair_r[pair]
        live = np.flatnonzero(alive)
        low, high = 0, len(live) - 1  # all live edges join u and v; find the shortest prefix
        while low < high:
            middle = (low + high) // 2
            prefix = live[: middle + 1]
            joined = _components(size, left[prefix], right[prefix])
            if joined[u] == joined[v]:
                high = middle
            else:
                low = middle + 1
        alive[live[low]] = False
        cuts.append((int(live[low]), pair))


def _parse_person_ids(person_ids: NDArray[np.object_]) -> Ints:
    """Sequence numbers of canonical person ids, read as fixed-width characters (vectorised).

    Only the canonical spelling is accepted (``P000000123``; more digits only without a leading
    zero), because two spellings of one number would otherwise be two persons with one sequence.
    """
    text = person_ids.astype(str)  # a missing id becomes "None" or "nan", rejected below
    sequences = np.zeros(len(text), dtype=np.int64)
    if not len(text):
        return sequences
    start, longest = len(PERSON_ID_PREFIX), len(PERSON_ID_PREFIX) + 18  # int64 holds 18 digits
    length = np.strings.str_len(text)
    valid = np.strings.startswith(text, PERSON_ID_PREFIX) & (length >= start + _DIGITS)
    valid &= length <= longest
    if valid.all():
        digits = text.view(np.uint32).reshape(len(text), -1)[:, start:] - np.uint32(ord("0"))
        inside = np.arange(digits.shape[1]) < (length - start)[:, None]
        valid &= np.where(inside, digits <= 9, True).all(axis=1)
        valid &= (length == start + _DIGITS) | (digits[:, 0] != 0)
    if not valid.all():
        raise ValueError(
            f"{int((~valid).sum())} person ids are not {PERSON_ID_PREFIX} plus a "
            f"{_DIGITS}-digit number, e.g. {person_ids[~valid][:_EXAMPLES].tolist()}"
        )
    for column in range(digits.shape[1]):
        sequences = np.where(inside[:, column], sequences * 10 + digits[:, column], sequences)
    return sequences


def _assign_person_ids(
    index: pd.Index, labels: Ints, components: int, previous: pd.DataFrame | None, floor: int
) -> _People:
    """Give every component a person id: its previous one, the oldest of several, or a new one.

    A previous person whose records now fall in several components stays with the component
    holding most of them (ties: the earliest component) - its *home*. A component keeps the
    oldest id among the persons whose home it is; the others are merged into it. Because a person
    has one home, no id can reach two components. Components with no home person get new ids.
    """
    sizes = np.bincount(labels, minlength=components)
    component_seq = np.full(components, -1, dtype=np.int64)
    component_ids = np.empty(components, dtype=object)
    pair_comp = pair_seq = pair_count = np.empty(0, np.int64)
    pair_text = np.empty(0, dtype=object)
    home = np.empty(0, dtype=bool)
    next_sequence = floor
    if previous is not None and not previous.empty:
        _require(previous, ("unique_id", "person_id"), "previous")
        person_text = previous["person_id"].to_numpy(dtype=object)
        # Every previous id counts, vanished records included, so none is issued twice.
        person_seq = _parse_person_ids(person_text)
        next_sequence = max(floor, int(person_seq.max()) + 1)
        codes = _codes(index, previous["unique_id"])
        present = np.flatnonzero(codes >= 0)  # records that vanished since then are dropped
        if np.bincount(codes[present], minlength=1).max() > 1:
            raise ValueError("previous gives some unique_id more than one person_id")
        # One row per (component, previous person) with its record count, sorted that way.
        row_comp, row_seq = labels[codes[present]], person_seq[present]
        order = np.lexsort((row_seq, row_comp))
        begins = np.flatnonzero(_starts(row_comp[order], row_seq[order]))
        pair_comp, pair_seq = row_comp[order[begins]], row_seq[order[begins]]
        pair_count = np.diff(np.append(begins, len(order))).astype(np.int64)
        pair_text = person_text[present[order[begins]]]
        by_person = np.lexsort((pair_comp, -pair_count, pair_seq))
        home = np.zeros(len(pair_comp), dtype=bool)
        home[by_person[_starts(pair_seq[by_person])]] = True
        # Pairs are sorted by (component, sequence): the first home pair of a component is its
        # oldest person, which survives.
        survivor = np.flatnonzero(home)[_starts(pair_comp[home])]
        component_seq[pair_comp[survivor]] = pair_seq[survivor]
        component_ids[pair_comp[survivor]] = pair_text[survivor]

    fresh = np.flatnonzero(component_seq < 0)
    component_seq[fresh] = next_sequence + np.arange(len(fresh), dtype=np.int64)
    component_ids[fresh] = _format_ids(component_seq[fresh])
    next_sequence += len(fresh)

    absorbed = home & (pair_seq != component_seq[pair_comp])
    merges = _frame(
        surviving_id=component_ids[pair_comp[absorbed]],
        absorbed_id=pair_text[absorbed],
        unique_ids_moved=pair_count[absorbed],
    )
    order = np.lexsort((pair_comp, pair_seq))
    away = order[~home[order]]
    splits = _frame(
        person_id=pair_text[away],
        new_person_id=component_ids[pair_comp[away]],
        records=pair_count[away],
    )
    had_previous = np.zeros(components, dtype=bool)
    had_previous[pair_comp] = True
    brand_new = fresh[~had_previous[fresh]]
    new_persons = _frame(person_id=component_ids[brand_new], records=sizes[brand_new])
    return _People(component_ids, merges, splits, new_persons, next_sequence)


def _format_ids(sequences: Ints) -> NDArray[np.object_]:
    return np.asarray(
        [f"{PERSON_ID_PREFIX}{s:0{_DIGITS}d}" for s in sequences.tolist()], dtype=object
    )


def _frame(**columns: NDArray[Any]) -> pd.DataFrame:
    """A result frame: object columns become pandas strings, as in the data contract."""
    return pd.DataFrame(
        {
            name: pd.array(values, dtype=pd.StringDtype()) if values.dtype == object else values
            for name, values in columns.items()
        }
    )
