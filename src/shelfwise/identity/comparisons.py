"""The comparison kinds of the identity model, and blocking rules, as Splink objects.

Each kind is a ladder of agreement levels from exact to none; Splink learns a match weight per
level. The levels are written with Splink's level library (dialect-neutral), so the same saved
model runs on DuckDB and on Spark; the few custom conditions name their base dialect so Splink
translates them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from shelfwise.identity.settings import IdentitySettings, rule_columns

Levels = list[Any]


def _cll() -> Any:
    import splink.comparison_level_library as cll

    return cll


def _custom(sql: str, label: str) -> Any:
    return _cll().CustomLevel(sql, label_for_charts=label, base_dialect_str="duckdb")


def _exact(column: str, tf: bool) -> Any:
    return _cll().ExactMatchLevel(column, term_frequency_adjustments=tf)


def _given_name(column: str, tf: bool) -> Levels:
    cll = _cll()
    return [
        cll.NullLevel(column),
        _exact(column, tf),
        # A shared nickname maps to a group of formal names ("christine|christopher"): one
        # side's name within the other's group. LIKE, not arrays: it translates to Spark.
        _custom(
            "('|' || \"given_name_canonical_l\" || '|') LIKE ('%|' || \"given_name_canonical_r\" "
            "|| '|%') OR ('|' || \"given_name_canonical_r\" || '|') LIKE "
            "('%|' || \"given_name_canonical_l\" || '|%')",
            "same formal name (nickname)",
        ),
        _custom(
            f'"{column}_l" = "last_name_r" AND "last_name_l" = "{column}_r"',
            "given name and surname swapped",
        ),
        cll.JaroWinklerLevel(column, 0.92),
        cll.JaroWinklerLevel(column, 0.8),
        _custom(
            f'(length("{column}_l") = 1 OR length("{column}_r") = 1) AND '
            f'substr("{column}_l", 1, 1) = substr("{column}_r", 1, 1)',
            "initial matches",
        ),
        cll.ElseLevel(),
    ]


def _name(column: str, tf: bool) -> Levels:
    cll = _cll()
    return [
        cll.NullLevel(column),
        _exact(column, tf),
        _custom(
            f'"{column}_l" = "first_name_r" AND "first_name_l" = "{column}_r"',
            "given name and surname swapped",
        ),
        cll.JaroWinklerLevel(column, 0.92),
        cll.JaroWinklerLevel(column, 0.8),
        cll.ElseLevel(),
    ]


def _date(column: str, tf: bool) -> Levels:
    cll = _cll()
    left, right = f'"{column}_l"', f'"{column}_r"'
    return [
        cll.NullLevel(column),
        _exact(column, False),
        _custom(
            f"substr({left}, 1, 4) = substr({right}, 1, 4) AND "
            f"substr({left}, 6, 2) = substr({right}, 9, 2) AND "
            f"substr({left}, 9, 2) = substr({right}, 6, 2)",
            "day and month transposed",
        ),
        cll.LevenshteinLevel(column, 1),
        cll.LevenshteinLevel(column, 2),
        _custom(f"substr({left}, 1, 4) = substr({right}, 1, 4)", "same year"),
        cll.ElseLevel(),
    ]


def _identifier(column: str, tf: bool) -> Levels:
    cll = _cll()
    return [
        cll.NullLevel(column),
        _exact(column, tf),
        cll.DamerauLevenshteinLevel(column, 1),
        cll.DamerauLevenshteinLevel(column, 2),
        cll.ElseLevel(),
    ]


def _phone(column: str, tf: bool) -> Levels:
    cll = _cll()
    return [
        cll.NullLevel(column),
        _exact(column, tf),
        _custom(f'right("{column}_l", 7) = right("{column}_r", 7)', "same last seven digits"),
        cll.ElseLevel(),
    ]


def _email(column: str, tf: bool) -> Levels:
    cll = _cll()
    local = "split_part(\"{c}_{s}\", '@', 1)"
    left, right = local.format(c=column, s="l"), local.format(c=column, s="r")
    return [
        cll.NullLevel(column),
        _exact(column, tf),
        _custom(f"{left} = {right}", "same mailbox name, other domain"),
        # A keying error, not "similar": mailboxes built from names are similar for namesakes.
        cll.DamerauLevenshteinLevel(column, 1),
        cll.ElseLevel(),
    ]


def _email_name(column: str, tf: bool) -> Levels:
    """One side's mailbox name spells the other side's name (``steven.callahan@`` and Steven
    Callahan): the link between a mailing-list record that has only an email and a CRM record
    whose email is missing or a placeholder. Not in the default comparisons: namesakes spell
    each other's mailboxes too, and Splink cannot adjust this level for a common surname, so
    on the simulated world it bought recall with false merges. Add ``"email:email_name"``
    where names are rare or other fields corroborate."""
    cll = _cll()
    box = "regexp_replace(split_part(\"{c}_{s}\", '@', 1), '[^a-z]', '', 'g')"
    left, right = box.format(c=column, s="l"), box.format(c=column, s="r")

    def spells(mailbox: str, side: str, both: bool) -> str:
        surname = f'"last_name_{side}"'
        given = f'"first_name_{side}"'
        has = f"length({surname}) >= 3 AND contains({mailbox}, replace({surname}, ' ', ''))"
        return f"({has} AND contains({mailbox}, {given}))" if both else f"({has})"

    missing = (
        f'("{column}_l" IS NULL OR "last_name_r" IS NULL) AND '
        f'("{column}_r" IS NULL OR "last_name_l" IS NULL)'
    )
    return [
        _custom(missing, "no mailbox and name to compare").configure(is_null_level=True),
        _custom(
            f"{spells(left, 'r', True)} OR {spells(right, 'l', True)}",
            "mailbox spells the other's full name",
        ),
        _custom(
            f"{spells(left, 'r', False)} OR {spells(right, 'l', False)}",
            "mailbox has the other's surname",
        ),
        cll.ElseLevel(),
    ]


def _address(column: str, tf: bool) -> Levels:
    cll = _cll()
    return [
        cll.NullLevel(column),
        _exact(column, tf),
        cll.JaroWinklerLevel(column, 0.9),
        cll.JaroWinklerLevel(column, 0.75),
        cll.ElseLevel(),
    ]


def _location(column: str, tf: bool) -> Levels:
    """Where the person lives, as one comparison of the address line, postcode and city.

    One comparison, not three: the parts of an address agree together, and a model that
    counted each agreement on its own would take a household (one address, several people)
    for one person several times over.
    """
    cll = _cll()

    def same(field: str) -> str:
        return f'"{field}_l" = "{field}_r"'

    def both(field: str) -> str:
        return f'"{field}_l" IS NOT NULL AND "{field}_r" IS NOT NULL'

    line = f'"{column}_l" IS NULL OR "{column}_r" IS NULL'
    nothing = (
        f'({line}) AND ("postcode_l" IS NULL OR "postcode_r" IS NULL) '
        'AND ("city_l" IS NULL OR "city_r" IS NULL)'
    )
    similar = f'jaro_winkler_similarity("{column}_l", "{column}_r") >= 0.9'
    return [
        _custom(nothing, "no address to compare").configure(is_null_level=True),
        _custom(f"{same(column)} AND ({same('postcode')} OR {same('city')})", "same address"),
        _custom(f"{similar} AND ({same('postcode')} OR {same('city')})", "same address, misspelt"),
        _custom(f"{same(column)}", "same street address, other town"),
        _custom(f"{both('postcode')} AND {same('postcode')}", "same postcode"),
        _custom(f"{both('city')} AND {same('city')}", "same town"),
        cll.ElseLevel(),
    ]


def _postcode(column: str, tf: bool) -> Levels:
    cll = _cll()
    return [
        cll.NullLevel(column),
        _exact(column, tf),
        cll.DamerauLevenshteinLevel(column, 1),
        _custom(f'substr("{column}_l", 1, 3) = substr("{column}_r", 1, 3)', "same district"),
        cll.ElseLevel(),
    ]


def _city(column: str, tf: bool) -> Levels:
    cll = _cll()
    return [
        cll.NullLevel(column),
        _exact(column, tf),
        cll.JaroWinklerLevel(column, 0.88),
        cll.ElseLevel(),
    ]


def _exact_only(column: str, tf: bool) -> Levels:
    cll = _cll()
    return [cll.NullLevel(column), _exact(column, tf), cll.ElseLevel()]


def _set(column: str, tf: bool) -> Levels:
    """Behaviour: the overlap of what two records bought or viewed (Jaccard of sku sets)."""
    cll = _cll()
    left, right = f'"{column}_l"', f'"{column}_r"'
    overlap = (
        f"len(list_intersect({left}, {right}))::DOUBLE / "
        f"greatest(len(list_distinct(list_concat({left}, {right}))), 1)"
    )
    return [
        _custom(
            f"{left} IS NULL OR {right} IS NULL OR len({left}) = 0 OR len({right}) = 0",
            "no behaviour on one side",
        ).configure(is_null_level=True),
        _custom(f"{overlap} >= 0.5", "half or more of the items shared"),
        _custom(f"{overlap} >= 0.2", "a fifth or more of the items shared"),
        _custom(f"{overlap} > 0", "some items shared"),
        cll.ElseLevel(),
    ]


KINDS: dict[str, Callable[[str, bool], Levels]] = {
    "given_name": _given_name,
    "name": _name,
    "date": _date,
    "identifier": _identifier,
    "phone": _phone,
    "email": _email,
    "email_name": _email_name,
    "address": _address,
    "location": _location,
    "postcode": _postcode,
    "city": _city,
    "exact": _exact_only,
    "shared": _exact_only,
    "set": _set,
}
# Kinds whose exact level is adjusted for how common the value is.
TF_KINDS = ("given_name", "name", "city", "shared", "address")


def comparison(spec: str, term_frequencies: bool) -> Any:
    """``"last_name:name"`` as a Splink comparison."""
    import splink.comparison_library as cl

    column, _, kind = spec.partition(":")
    if kind not in KINDS:
        raise ValueError(f"comparison {spec!r}: unknown kind {kind!r}; known: {sorted(KINDS)}")
    tf = term_frequencies and kind in TF_KINDS
    # A second comparison of one column (email as a name) needs a name of its own.
    name = column if kind != "email_name" else f"{column}_name"
    return cl.CustomComparison(
        KINDS[kind](column, tf), output_column_name=name, comparison_description=spec
    )


def blocking_rule(rule: str) -> Any:
    from splink import block_on

    return block_on(*rule_columns(rule))


def usable(rules: Collection[str], columns_with_values: Collection[str]) -> list[str]:
    """The rules whose every column has values in the data (others would block nothing)."""
    return [r for r in rules if all(c in columns_with_values for c in rule_columns(r))]


def splink_settings(
    settings: IdentitySettings, columns_with_values: Collection[str]
) -> dict[str, Any]:
    """The Splink settings for the comparisons and rules that the data can support."""
    from splink import SettingsCreator

    comparisons = [
        comparison(spec, settings.term_frequencies)
        for spec in settings.comparisons
        if spec.partition(":")[0] in columns_with_values
    ]
    if not comparisons:
        raise ValueError(
            "identity model: no comparison column has values; the records hold only "
            f"{sorted(columns_with_values)}"
        )
    blocking = usable(settings.blocking_rules, columns_with_values)
    if not blocking:
        raise ValueError("identity model: no blocking rule's columns have values in the records")
    creator = SettingsCreator(
        link_type=settings.link_type,  # type: ignore[arg-type]
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=[blocking_rule(r) for r in blocking],
        max_iterations=settings.max_iterations,
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
        additional_columns_to_retain=[],
    )
    return {"creator": creator, "blocking_rules": blocking}
