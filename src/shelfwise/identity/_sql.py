"""SQL text helpers for normalisation: quoting, cleaning, word lookups, stage composition.

Everything here builds DuckDB SQL text and knows nothing of customer records; the field
builders in :mod:`shelfwise.identity.normalise` are written with it. :class:`_Evaluator` runs
such SQL for single values on a private in-memory connection, the values made DuckDB's
by :func:`_parameter`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import duckdb
import pandas as pd

_WORDS_BY_POSITION = 8
# A field as stages: each a dict of named SQL columns computed from the stage before.
_Stages = tuple[dict[str, str], ...]

_WHITESPACE = r"[\s\p{Z}\x{0B}\x{85}]"
# What collapsing whitespace changes: a run of it, or any whitespace but a plain space.
_UNTIDY = _WHITESPACE + (
    r"{2,}|[\t\n\f\r\x{0B}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]"
)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _in(expr: str, values: Collection[str]) -> str:
    """``expr IN (...)`` as list_contains: DuckDB plans an IN list as a join, a few ms a query."""
    return f"list_contains([{', '.join(map(_literal, values))}], {expr})" if values else "FALSE"


def _alternation(words: Collection[str]) -> str:
    return "(?:" + "|".join(re.escape(w) for w in sorted(words, key=lambda w: (-len(w), w))) + ")"


def _replace(column: str, pattern: str, replacement: str) -> str:
    """regexp_replace, run only where ``pattern`` occurs: finding is cheap, replacing is not."""
    found = _literal(pattern)
    return (
        f"CASE WHEN regexp_matches({column}, {found}) "
        f"THEN regexp_replace({column}, {found}, {_literal(replacement)}, 'g') ELSE {column} END"
    )


def _clean(column: str) -> str:
    """Trimmed, inner whitespace collapsed, empty -> NULL: what every text field gets first."""
    return f"nullif(trim({_replace(column, _UNTIDY, ' ')}), '')"


def _squeezed(column: str) -> str:
    """No whitespace at all (an email, id or postcode has none of its own), empty -> NULL."""
    return f"nullif({_replace(column, _WHITESPACE, '')}, '')"


def _chain(name: str, column: str, *steps: Callable[[str], str]) -> list[dict[str, str]]:
    """One stage per step, each applied to the column the step before made; the last is ``name``."""
    stages = []
    for i, step in enumerate(steps):
        made = name if i == len(steps) - 1 else f"{name}_{i}"
        stages.append({made: step(column)})
        column = made
    return stages


def _folded(column: str) -> str:
    """Lower case without accents; letters strip_accents keeps (ß, ø, ł, æ) spelt out.

    Plain ASCII (a byte per character), the bulk of it, needs lower case only.
    """
    x = f"strip_accents(lower({column}))"
    for letter, plain in (("ß", "ss"), ("æ", "ae"), ("œ", "oe"), ("ø", "o"), ("ł", "l")):
        x = f"replace({x}, '{letter}', '{plain}')"
    return f"CASE WHEN strlen({column}) = length({column}) THEN lower({column}) ELSE {x} END"


def _words(name: str, column: str, table: Mapping[str, tuple[str, ...]]) -> list[dict[str, str]]:
    """Each space-separated word of ``column`` looked up in ``table`` (form -> abbreviation).

    Speed, as every address has a street word: only the forms that change are looked up; a
    value with none of them (one regular expression tells) is left as it is; the first
    :data:`_WORDS_BY_POSITION` words are read by position, which spares DuckDB a lambda per
    value (longer values take the lambda); the map is built once, as a constant column.
    """
    lookup = {w: short for short, written in table.items() for w in written if w != short}
    pairs = ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in lookup.items())
    split, table_ = f"{name}_split", f"{name}_table"
    test = _literal(f"(?:^| ){_alternation(lookup)}(?: |$)")
    each = ", ".join(
        f"coalesce({table_}[{split}[{i}]], {split}[{i}])" for i in range(1, _WORDS_BY_POSITION + 1)
    )
    every = f"list_transform({split}, lambda w: coalesce({table_}[w], w))"
    found = f"CASE WHEN regexp_matches({column}, {test}) THEN string_split({column}, ' ') END"
    return [
        {split: found, table_: f"MAP {{{pairs}}}"},
        {
            name: f"CASE WHEN {split} IS NULL THEN {column} "
            f"WHEN len({split}) <= {_WORDS_BY_POSITION} THEN concat_ws(' ', {each}) "
            f"ELSE array_to_string({every}, ' ') END"
        },
    ]


def _place(name: str, column: str, keep: str = "") -> list[dict[str, str]]:
    """Folded; dots and apostrophes gone (St. = St, O'Neil = ONeil); other marks a space."""
    steps: list[Callable[[str], str]] = [
        _folded,
        lambda c: _replace(c, "[.'’`]", ""),
        lambda c: _replace(c, rf"[^\p{{L}}\p{{N}}{keep} ]+", " "),
    ]
    if "#" in keep:  # "#4" is a unit number: the designator becomes a word of its own
        steps.append(
            "CASE WHEN contains({0}, '#') THEN replace({0}, '#', ' # ') ELSE {0} END".format
        )
    steps.append(lambda c: f"nullif(trim({_replace(c, ' {2,}', ' ')}), '')")
    return _chain(name, column, *steps)


def _compose(source: str, fields: Sequence[_Stages]) -> str:
    """Nest the fields' stages: stage i of every field is computed over stage i - 1."""
    query = source
    for depth in range(max((len(stages) for stages in fields), default=0)):
        columns = {
            name: sql
            for stages in fields
            if depth < len(stages)
            for name, sql in stages[depth].items()
        }
        listed = ", ".join(f"{sql} AS {name}" for name, sql in columns.items())
        query = f"SELECT *, {listed} FROM ({query}) AS _stage{depth}"
    return query


def _parameter(value: Any) -> Any:
    """A record's value as DuckDB takes it: attributes as JSON text, pandas' missing as None."""
    if isinstance(value, Mapping):
        return json.dumps(dict(value), default=str)
    return None if pd.api.types.is_scalar(value) and pd.isna(value) else value


class _Evaluator:
    """A private in-memory DuckDB for single values, opened on first use, one query at a time.

    ``setup`` prepares the connection once it is opened (registers functions and tables).
    """

    def __init__(self, setup: Callable[[duckdb.DuckDBPyConnection], None]) -> None:
        self._setup = setup
        self._lock = threading.Lock()
        self._connection: duckdb.DuckDBPyConnection | None = None

    def run(self, sql: str, parameters: Sequence[Any]) -> tuple[Any, ...]:
        with self._lock:
            if self._connection is None:
                self._connection = duckdb.connect()
                # One row at a time: a single thread, and no optimiser passes that pay off
                # only on many rows (they change how a plan runs, never what it returns).
                self._connection.execute("SET threads = 1")
                self._connection.execute(f"SET disabled_optimizers = '{_ONE_ROW_SKIPS}'")
                self._setup(self._connection)
            rows = self._connection.execute(sql, list(parameters)).fetchall()
        return tuple(rows[0])


_ONE_ROW_SKIPS = "statistics_propagation,expression_rewriter,common_subexpressions,common_subplan"
