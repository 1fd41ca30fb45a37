"""Persons from scored pairs: components against networkx, stable ids against a plain reference.

networkx and a few lines of plain Python are the reference answers (STYLE.md habit 10); the
vectorised module must agree with them exactly on small random graphs with fixed seeds.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from shelfwise.identity.graph import (
    PERSON_ID_PREFIX,
    Clustering,
    cluster_records,
    next_person_sequence,
    pairs_within,
)


def uid(i: int) -> str:
    return f"r{i:05d}"  # zero-padded, so string order is number order


def records(n: int) -> pd.Series:
    return pd.Series([uid(i) for i in range(n)])


def edge_frame(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["unique_id_l", "unique_id_r", "match_probability"])


def decision_frame(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["unique_id_l", "unique_id_r", "decision"])


def chain(ids: list[str], probabilities: list[float]) -> list[tuple[str, str, float]]:
    assert len(probabilities) == len(ids) - 1
    return [(a, b, p) for (a, b), p in zip(itertools.pairwise(ids), probabilities, strict=True)]


def person_of(result: Clustering) -> dict[str, str]:
    return dict(zip(result.assignments["unique_id"], result.assignments["person_id"], strict=True))


def partition(result: Clustering) -> set[frozenset[str]]:
    groups = result.assignments.groupby("person_id")["unique_id"]
    return {frozenset(members) for _, members in groups}


def random_edges(rng: np.random.Generator, n: int, m: int) -> pd.DataFrame:
    """Random pairs among the first 80% of records (the rest stay isolated), with repeats,
    reversed copies and self-pairs."""
    left = rng.integers(0, int(n * 0.8), m)
    right = rng.integers(0, int(n * 0.8), m)
    rows = [(uid(a), uid(b), float(p)) for a, b, p in zip(left, right, rng.random(m), strict=True)]
    repeats = [rows[i] for i in rng.integers(0, m, m // 5)]
    rows += [(b, a, float(rng.random())) for a, b, _ in repeats]  # reversed, new probability
    rows += [(a, b, p) for a, b, p in repeats[: m // 10]]  # repeated as they were
    return edge_frame(rows)


def accepted_graph(n: int, edges: pd.DataFrame, threshold: float) -> nx.Graph:
    graph = nx.Graph()
    graph.add_nodes_from(uid(i) for i in range(n))
    best: dict[frozenset[str], float] = defaultdict(float)
    for a, b, p in edges.itertuples(index=False):
        if a != b:
            best[frozenset((a, b))] = max(best[frozenset((a, b))], p)
    graph.add_edges_from(tuple(pair) for pair, p in best.items() if p >= threshold)
    return graph


def reference_ids(graph: nx.Graph, previous: dict[str, str]) -> dict[str, str]:
    """The stable-id rules written the obvious way: home component per previous person, oldest
    home person per component, new ids in order of each component's smallest record."""
    components = sorted((sorted(c) for c in nx.connected_components(graph)), key=lambda c: c[0])
    counts: dict[str, Counter[int]] = defaultdict(Counter)
    for position, members in enumerate(components):
        for member in members:
            if member in previous:
                counts[previous[member]][position] += 1
    home = {p: min(c, key=lambda position: (-c[position], position)) for p, c in counts.items()}
    sequence = max((int(p[1:]) for p in previous.values()), default=0) + 1
    answer: dict[str, str] = {}
    for position, members in enumerate(components):
        homed = [p for p, h in home.items() if h == position]
        if homed:
            person = min(homed, key=lambda p: int(p[1:]))
        else:
            person, sequence = f"P{sequence:09d}", sequence + 1
        answer.update(dict.fromkeys(members, person))
    return answer


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_components_match_networkx(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    edges = random_edges(rng, n, 300)
    result = cluster_records(records(n).sample(frac=1.0, random_state=seed), edges)
    expected = {frozenset(c) for c in nx.connected_components(accepted_graph(n, edges, 0.5))}
    assert partition(result) == expected
    assert result.components == len(expected)
    assert result.assignments["unique_id"].tolist() == [uid(i) for i in range(n)]


@pytest.mark.parametrize("seed", [10, 11, 12])
def test_ids_match_the_reference_rules(seed: int) -> None:
    """Random previous persons (many merges and splits) against the plain-Python rules."""
    rng = np.random.default_rng(seed)
    n = 300
    edges = random_edges(rng, n, 260)
    old = rng.choice(n, size=200, replace=False)
    previous = {
        uid(i): f"P{s:09d}" for i, s in zip(old, rng.integers(1, 60, len(old)), strict=True)
    }
    previous["r99999"] = "P000000070"  # a record that vanished: its id is still never reissued
    frame = pd.DataFrame({"unique_id": list(previous), "person_id": list(previous.values())})
    result = cluster_records(records(n), edges, previous=frame)
    assert person_of(result) == reference_ids(accepted_graph(n, edges, 0.5), previous)
    # No person id reaches two components, and no component holds two ids.
    assert len(partition(result)) == result.components
    assert result.assignments.groupby("person_id")["unique_id"].count().sum() == n


def test_threshold_is_inclusive() -> None:
    edges = edge_frame([(uid(0), uid(1), 0.7), (uid(2), uid(3), float(np.nextafter(0.7, 0.0)))])
    result = cluster_records(records(4), edges, threshold=0.7)
    assert partition(result) == {
        frozenset({uid(0), uid(1)}),
        frozenset({uid(2)}),
        frozenset({uid(3)}),
    }


def test_self_pairs_are_ignored_and_repeats_keep_the_best_score() -> None:
    edges = edge_frame([(uid(0), uid(0), 1.0), (uid(1), uid(2), 0.1), (uid(2), uid(1), 0.9)])
    result = cluster_records(records(3), edges)
    assert partition(result) == {frozenset({uid(0)}), frozenset({uid(1), uid(2)})}


def test_fresh_ids_follow_the_smallest_record_of_each_person() -> None:
    edges = edge_frame([(uid(3), uid(1), 0.9), (uid(2), uid(4), 0.9)])
    result = cluster_records(pd.Series([uid(i) for i in (4, 3, 2, 1, 0)]), edges)
    assert person_of(result) == {
        uid(0): "P000000001",
        uid(1): "P000000002",
        uid(3): "P000000002",
        uid(2): "P000000003",
        uid(4): "P000000003",
    }
    assert result.new_persons.to_dict("list") == {
        "person_id": ["P000000001", "P000000002", "P000000003"],
        "records": [1, 2, 2],
    }
    assert result.next_sequence == 4
    assert str(result.assignments["person_id"].dtype) == "string"


def test_rerun_with_identical_inputs_is_idempotent() -> None:
    rng = np.random.default_rng(5)
    n = 2000
    edges = random_edges(rng, n, 1500)
    first = cluster_records(records(n), edges)
    again = cluster_records(records(n), edges)
    pd.testing.assert_frame_equal(first.assignments, again.assignments)
    rerun = cluster_records(records(n), edges, previous=first.assignments)
    pd.testing.assert_frame_equal(first.assignments, rerun.assignments)
    assert rerun.merges.empty
    assert rerun.splits.empty
    assert rerun.new_persons.empty


def test_new_records_leave_existing_person_ids_alone() -> None:
    rng = np.random.default_rng(6)
    n, added = 2000, 20  # 1% new records
    edges = random_edges(rng, n, 1500)
    first = cluster_records(records(n), edges)
    joining = [(uid(n + i), uid(int(rng.integers(0, n))), 0.95) for i in range(0, added, 2)]
    lonely = [(uid(n + i), uid(n + i + 1), 0.2) for i in range(1, added - 1, 2)]
    later = cluster_records(
        records(n + added),
        pd.concat([edges, edge_frame(joining + lonely)]),
        previous=first.assignments,
    )
    before, after = person_of(first), person_of(later)
    assert all(after[record] == person for record, person in before.items())
    for new, old, _ in joining:
        assert after[new] == before[old]
    issued = sorted(int(p[1:]) for p in later.new_persons["person_id"])
    assert issued == list(range(first.next_sequence, first.next_sequence + added // 2))
    assert later.merges.empty
    assert later.splits.empty


def test_a_bridging_record_merges_two_persons_into_the_older_id() -> None:
    edges = [(uid(0), uid(1), 0.9), (uid(2), uid(3), 0.9)]
    first = cluster_records(records(4), edge_frame(edges))
    assert person_of(first)[uid(2)] == "P000000002"
    # The bridge arrives; give the older person the later records so order alone cannot decide.
    previous = first.assignments.assign(
        person_id=lambda f: f["person_id"].map(
            {"P000000001": "P000000007", "P000000002": "P000000003"}
        )
    )
    bridged = [*edges, (uid(1), uid(4), 0.8), (uid(4), uid(2), 0.8)]
    later = cluster_records(records(5), edge_frame(bridged), previous=previous)
    assert set(person_of(later).values()) == {"P000000003"}
    assert later.merges.to_dict("list") == {
        "surviving_id": ["P000000003"],
        "absorbed_id": ["P000000007"],
        "unique_ids_moved": [2],
    }
    assert later.new_persons.empty


def test_a_split_decision_cuts_the_weakest_edge_and_holds_on_later_runs() -> None:
    ids = [uid(i) for i in range(5)]
    edges = chain(ids, [0.95, 0.9, 0.6, 0.85])
    split = decision_frame([(ids[4], ids[0], "split")])
    first = cluster_records(records(5), edge_frame(edges), decisions=split)
    assert partition(first) == {frozenset(ids[:3]), frozenset(ids[3:])}
    assert first.cut_edges.to_dict("list") == {
        "unique_id_l": [ids[2]],
        "unique_id_r": [ids[3]],
        "match_probability": [0.6],
        "because": [f"split {ids[0]} / {ids[4]}"],
    }
    # A new record bridges the two sides; the split still holds, the weaker of the bridge's
    # two edges and the old weakest link are cut, and the original sides keep their ids.
    bridges = [(ids[2], uid(5), 0.8), (uid(5), ids[3], 0.8)]
    later = cluster_records(
        records(6), edge_frame(edges + bridges), decisions=split, previous=first.assignments
    )
    assert partition(later) == {frozenset([*ids[:3], uid(5)]), frozenset(ids[3:])}
    after = person_of(later)
    assert after[ids[0]] == person_of(first)[ids[0]]
    assert after[ids[4]] == person_of(first)[ids[4]]
    cut = later.cut_edges
    assert list(zip(cut["unique_id_l"], cut["unique_id_r"], strict=True)) == [
        (ids[3], uid(5)),
        (ids[2], ids[3]),
    ]
    assert set(cut["because"]) == {f"split {ids[0]} / {ids[4]}"}


def test_split_enforcement_matches_a_networkx_spanning_tree_reference() -> None:
    rng = np.random.default_rng(7)
    n = 120
    edges = random_edges(rng, n, 220)
    pairs = [(uid(a), uid(b)) for a, b in rng.integers(0, 90, (6, 2)) if a != b]
    result = cluster_records(
        records(n), edges, decisions=decision_frame([(a, b, "split") for a, b in pairs])
    )
    graph = accepted_graph(n, edges, 0.5)
    best: dict[frozenset[str], float] = defaultdict(float)
    for a, b, p in edges.itertuples(index=False):
        best[frozenset((a, b))] = max(best[frozenset((a, b))], p)
    for a, b in pairs:
        if graph.has_edge(a, b):
            graph.remove_edge(a, b)
    nx.set_edge_attributes(graph, {tuple(e): best[frozenset(e)] for e in graph.edges}, "p")
    cuts = []
    ordered = sorted(tuple(sorted(pair)) for pair in pairs)
    while violated := [pair for pair in ordered if nx.has_path(graph, *pair)]:
        tree = nx.maximum_spanning_tree(graph, weight="p")
        path = nx.shortest_path(tree, *violated[0])
        weakest = min(itertools.pairwise(path), key=lambda e: graph.edges[e]["p"])
        graph.remove_edge(*weakest)
        cuts.append(frozenset(weakest))
    assert cuts, "the seed should need at least one cut"
    assert partition(result) == {frozenset(c) for c in nx.connected_components(graph)}
    logged = [
        frozenset(pair)
        for pair in zip(
            result.cut_edges["unique_id_l"], result.cut_edges["unique_id_r"], strict=True
        )
    ]
    assert sorted(map(sorted, logged)) == sorted(map(sorted, cuts))


def test_a_confirm_decision_joins_persons_and_holds_on_later_runs() -> None:
    edges = [(uid(0), uid(1), 0.9), (uid(2), uid(3), 0.9), (uid(1), uid(2), 0.1)]
    confirm = decision_frame([(uid(3), uid(0), "confirm")])  # a pair the model never scored
    first = cluster_records(records(4), edge_frame(edges), decisions=confirm)
    assert len(set(person_of(first).values())) == 1
    later = cluster_records(
        records(5),
        edge_frame([*edges, (uid(4), uid(3), 0.2)]),
        decisions=confirm,
        previous=first.assignments,
    )
    assert {person_of(later)[uid(i)] for i in range(4)} == {person_of(first)[uid(0)]}
    assert later.merges.empty
    assert later.splits.empty


def test_a_confirmed_edge_is_cut_only_when_confirms_alone_join_a_split_pair() -> None:
    ids = [uid(i) for i in range(4)]
    edges = edge_frame(
        [*chain(ids[:3], [0.9, 0.95]), (ids[0], ids[3], 0.99), (ids[3], ids[2], 0.99)]
    )
    confirms = [(ids[0], ids[1], "confirm"), (ids[1], ids[2], "confirm")]
    # The confirmed path 0=1=2 outranks the stronger 2-3 edge, so 2-3 is what gets cut.
    avoidable = cluster_records(
        records(4), edges, decisions=decision_frame([*confirms, (ids[0], ids[3], "split")])
    )
    assert partition(avoidable) == {frozenset(ids[:3]), frozenset({ids[3]})}
    assert avoidable.cut_edges[["unique_id_l", "unique_id_r"]].values.tolist() == [[ids[2], ids[3]]]
    # A reviewer confirmed 0=1=2 and also split 0 from 2: the split wins, and the weakest
    # confirmed edge (0-1 scored 0.9, 1-2 0.95) is cut; then the 0.99 tie between 0-3 and 2-3
    # goes to the smaller pair, so 2-3 is cut as well.
    contradiction = cluster_records(
        records(4), edges, decisions=decision_frame([*confirms, (ids[2], ids[0], "split")])
    )
    assert partition(contradiction) == {frozenset({ids[0], ids[3]}), frozenset(ids[1:3])}
    assert contradiction.cut_edges[["unique_id_l", "unique_id_r"]].values.tolist() == [
        [ids[0], ids[1]],
        [ids[2], ids[3]],
    ]


def test_a_later_decision_on_a_pair_replaces_an_earlier_one() -> None:
    edges = edge_frame([(uid(0), uid(1), 0.9)])
    log = decision_frame([(uid(0), uid(1), "split"), (uid(1), uid(0), "confirm")])
    assert len(partition(cluster_records(records(2), edges, decisions=log))) == 1
    assert len(partition(cluster_records(records(2), edges, decisions=log[::-1]))) == 2


def test_decisions_on_vanished_records_are_skipped() -> None:
    edges = edge_frame([(uid(0), uid(1), 0.9)])
    log = decision_frame([(uid(0), "gone", "split"), ("gone", uid(1), "confirm")])
    assert len(partition(cluster_records(records(2), edges, decisions=log))) == 1


def test_edges_naming_unknown_records_are_refused() -> None:
    edges = edge_frame([(uid(0), "ghost-1", 0.9), ("ghost-2", uid(1), 0.9), (uid(0), uid(1), 0.9)])
    with pytest.raises(ValueError, match=r"2 records .*\['ghost-1', 'ghost-2'\]"):
        cluster_records(records(2), edges)


def test_inputs_that_cannot_be_right_are_refused() -> None:
    with pytest.raises(ValueError, match="repeats 1 ids"):
        cluster_records(pd.Series([uid(0), uid(0)]), edge_frame([]))
    with pytest.raises(ValueError, match="outside"):
        cluster_records(records(2), edge_frame([(uid(0), uid(1), 1.5)]))
    with pytest.raises(ValueError, match="decision must be one of"):
        cluster_records(
            records(2), edge_frame([]), decisions=decision_frame([(uid(0), uid(1), "maybe")])
        )
    previous = pd.DataFrame({"unique_id": [uid(0)], "person_id": ["P12"]})
    with pytest.raises(ValueError, match=r"not P plus a 9-digit number, e.g. \['P12'\]"):
        cluster_records(records(2), edge_frame([]), previous=previous)


def test_a_component_can_absorb_a_person_and_lose_records_to_another_at_once() -> None:
    previous = pd.DataFrame(
        {
            "unique_id": [uid(i) for i in range(6)],
            "person_id": ["P000000005"] * 3 + ["P000000002"] * 2 + ["P000000009"],
        }
    )
    edges = chain([uid(0), uid(1)], [0.9]) + chain([uid(i) for i in range(2, 7)], [0.9] * 4)
    result = cluster_records(records(7), edge_frame(edges), previous=previous)
    assert person_of(result) == {
        **dict.fromkeys([uid(0), uid(1)], "P000000005"),
        **dict.fromkeys([uid(i) for i in range(2, 7)], "P000000002"),
    }
    assert result.merges.to_dict("list") == {
        "surviving_id": ["P000000002"],
        "absorbed_id": ["P000000009"],
        "unique_ids_moved": [1],
    }
    assert result.splits.to_dict("list") == {
        "person_id": ["P000000005"],
        "new_person_id": ["P000000002"],
        "records": [1],
    }


def test_a_split_person_stays_with_its_larger_part_and_ties_go_to_the_earlier_part() -> None:
    previous = pd.DataFrame(
        {
            "unique_id": [uid(i) for i in range(7)],
            "person_id": ["P000000004"] * 3 + ["P000000001"] * 4,
        }
    )
    edges = [(uid(1), uid(2), 0.9), (uid(3), uid(4), 0.9), (uid(5), uid(6), 0.9)]
    result = cluster_records(records(7), edge_frame(edges), previous=previous)
    ids = person_of(result)
    assert ids[uid(1)] == "P000000004"  # two of its three records
    assert ids[uid(3)] == "P000000001"  # a 2-2 tie: the part with the smaller unique_id
    assert result.splits.to_dict("list") == {
        "person_id": ["P000000001", "P000000004"],
        "new_person_id": [ids[uid(5)], ids[uid(0)]],
        "records": [2, 1],
    }
    assert [ids[uid(0)], ids[uid(5)]] == ["P000000005", "P000000006"]
    assert result.new_persons.empty


def test_retired_ids_are_not_issued_again() -> None:
    edges = [(uid(0), uid(1), 0.9)]
    first = cluster_records(records(3), edge_frame(edges))  # P1 = {0, 1}, P2 = {2}
    merged = cluster_records(
        records(3), edge_frame([*edges, (uid(1), uid(2), 0.9)]), previous=first.assignments
    )
    assert merged.merges["absorbed_id"].tolist() == ["P000000002"]
    assert merged.next_sequence == 3
    later = cluster_records(
        records(4),
        edge_frame(edges),
        previous=merged.assignments,
        first_sequence=merged.next_sequence,
    )
    # Without the high-water mark the split-off record would get P000000002 back.
    assert person_of(later)[uid(2)] == "P000000003"
    assert person_of(later)[uid(3)] == "P000000004"


def test_pair_counts_and_sequences() -> None:
    assignments = pd.DataFrame(
        {"unique_id": list("abcdef"), "person_id": ["P1"] * 3 + ["P2"] * 2 + ["P3"]}
    )
    assert pairs_within(assignments) == 3 + 1
    assert next_person_sequence(pd.Series(["P000000004", "P000000012", "P000000004"])) == 13
    assert next_person_sequence(pd.Series([], dtype=object)) == 1
    assert PERSON_ID_PREFIX == "P"


def test_no_records_at_all() -> None:
    result = cluster_records(pd.Series([], dtype=object), edge_frame([]))
    assert result.components == 0
    assert result.assignments.empty
    assert list(result.assignments.columns) == ["unique_id", "person_id"]
