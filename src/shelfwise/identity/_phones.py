"""Phone numbers in SQL: E.164 by a phonenumbers UDF, with a SQL shortcut for plain numbers.

:func:`_phone` is the phone field's builder for :mod:`shelfwise.identity.normalise`; the
UDF it calls is registered on a connection by :func:`_register_phone_function`.
"""

from __future__ import annotations

import re
from functools import lru_cache

import duckdb
import duckdb.func
import phonenumbers
import pyarrow as pa

from shelfwise.identity import _vocabulary as words
from shelfwise.identity._sql import _clean, _literal, _Stages

_PHONE_FUNCTION = "shelfwise_phone_e164"


def _e164_sql(text: str, digits: str, region: str) -> str:
    """E.164 by the phonenumbers UDF, with a SQL shortcut for plain numbers of ``region``.

    phonenumbers costs some 20 microseconds a number, so a million distinct phones would
    take 20 s. A number of digits and separators only, already in the region's national
    layout (with or without its national prefix, or as +<country code>), is only reformatted
    by phonenumbers: the shortcut does that in SQL with the region's own numbering pattern
    and lengths from phonenumbers' metadata. Tests hold the shortcut to the UDF.
    """
    udf = f"{_PHONE_FUNCTION}({text}, {_literal(region)})"
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    general = metadata.general_desc if metadata is not None else None
    if metadata is None or general is None or general.national_number_pattern is None:
        return udf
    code, pattern = str(metadata.country_code), _literal(f"(?:{general.national_number_pattern})")
    lengths = ", ".join(str(n) for n in general.possible_length)

    def fits(expr: str) -> str:
        return f"(regexp_full_match({expr}, {pattern}) AND length({expr}) IN ({lengths}))"

    rest = f"substr({digits}, {len(code) + 1})"
    branches = [
        f"WHEN {text} IS NULL THEN NULL",
        f"WHEN NOT regexp_full_match({text}, '\\+?[0-9 ().\\-/]+') THEN {udf}",
        f"WHEN starts_with({text}, '+') AND starts_with({digits}, '{code}') AND {fits(rest)} "
        f"THEN '+' || {digits}",
        f"WHEN starts_with({text}, '+') THEN {udf}",
    ]
    prefix = metadata.national_prefix
    simple = metadata.national_prefix_for_parsing in (None, prefix)
    if prefix and simple and metadata.national_prefix_transform_rule is None:
        national = f"substr({digits}, {len(prefix) + 1})"
        branches.append(
            f"WHEN starts_with({digits}, '{prefix}') AND {fits(national)} "
            f"THEN '+{code}' || {national}"
        )
    branches.append(f"WHEN {fits(digits)} THEN '+{code}' || {digits}")
    return f"CASE {' '.join(branches)} ELSE {udf} END"


def _phone(default_region: str) -> _Stages:
    """E.164 in ``default_region``; a run of one digit or a counting sequence is a placeholder."""
    code = phonenumbers.country_code_for_region(default_region)
    runs = [f"{d}{{7,}}" for d in "0123456789"]
    dummy = _literal(f"(?:{code})?(?:{'|'.join([*runs, *words.PLACEHOLDER_PHONE_DIGITS])})")
    return (
        {"_phone_text": _clean("phone")},
        {"_phone_digits": "regexp_replace(_phone_text, '[^0-9]', '', 'g')"},
        {"_phone": _e164_sql("_phone_text", "_phone_digits", default_region)},
        {
            "_why_phone": "CASE WHEN _phone_text IS NULL THEN NULL "
            f"WHEN regexp_full_match(_phone_digits, {dummy}) THEN 'phone:placeholder' "
            "WHEN _phone IS NULL THEN 'phone:invalid' END"
        },
        {"_v_phone": "CASE WHEN _why_phone IS NULL THEN _phone END"},
    )


def _phone_udf(raw: pa.ChunkedArray, region: pa.ChunkedArray) -> pa.Array:
    """The vectorised UDF: each distinct (number, region) is parsed once per process."""
    values, regions = raw.to_pylist(), region.to_pylist()
    return pa.array(
        [
            None if v is None or r is None else _e164(v, r)
            for v, r in zip(values, regions, strict=True)
        ],
        type=pa.string(),
    )


@lru_cache(maxsize=1 << 18)
def _e164(raw: str, region: str) -> str | None:
    """E.164 when the number is possible (a full length) and fits its country's numbering.

    Not ``is_valid_number``: its prefix tables lag new area codes and overlays, and would
    drop a third of well-formed US numbers.
    """
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible != phonenumbers.ValidationResult.IS_POSSIBLE or number.country_code is None:
        return None
    home = phonenumbers.region_code_for_country_code(number.country_code)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
        number.country_code, home
    )
    general = metadata.general_desc if metadata is not None else None
    pattern = general.national_number_pattern if general is not None else None
    if pattern is None or not re.fullmatch(
        pattern, phonenumbers.national_significant_number(number)
    ):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _register_phone_function(connection: duckdb.DuckDBPyConnection) -> None:
    """Register the phone UDF on ``connection`` unless it is there already."""
    found = connection.execute(
        "SELECT count(*) FROM duckdb_functions() WHERE function_name = ?", [_PHONE_FUNCTION]
    ).fetchall()
    if not found[0][0]:
        # Types by name: DuckDBPyType objects held by a UDF leak at exit (duckdb 2.0).
        connection.create_function(
            _PHONE_FUNCTION, _phone_udf, ["VARCHAR", "VARCHAR"], "VARCHAR",
            type=duckdb.func.ARROW, null_handling=duckdb.func.SPECIAL,
        )  # fmt: skip
