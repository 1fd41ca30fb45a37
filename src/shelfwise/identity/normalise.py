"""Customer records as a linkage frame: one normalised, garbage-free row per record, in SQL.

Why SQL: the resolver links millions of records inside DuckDB, so normalising there keeps them
in one engine (a million records in seconds on two cores). Why one implementation: the API and
serving normalise a single email or record by running the very same SQL on a private
in-memory connection, so a value normalised online always equals its batch form.

Each field has one expression builder (``_email``, ``_phone``, ...) that returns *stages*:
dicts of named SQL columns, each stage computed from the columns of the one before. A field's
output is its ``_v_<column>``; ``_why_<field>`` says why a value was garbage (``email:invalid``,
``ip:blocked``) and is collected into ``nulled``, so a reviewer sees what was thrown away.
Rows come back in no particular order: ``unique_id`` (``source_system:source_id``) is the key.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

import duckdb
import duckdb.func
import pandas as pd
import phonenumbers
import pyarrow as pa

from shelfwise.identity import _nicknames as words


@dataclass(frozen=True)
class EmailProviderRule:
    """How one mail provider reads the local part: which spellings reach the same mailbox."""

    domain: str
    canonical_domain: str
    ignore_dots: bool
    plus_tags: bool


_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


@dataclass(frozen=True)
class NormaliseSettings:
    """What counts as the same value and what counts as garbage; round-trips through JSON.

    ``plus_tags_everywhere`` drops a ``+tag`` at unknown domains too, since most providers
    deliver ``name+tag`` to ``name``. ``attribute_columns`` are keys of the ``attributes``
    JSON lifted into columns of their own (``soc_sec_id`` and ``state`` for FEBRL).
    """

    default_region: str = "US"
    email_providers: tuple[EmailProviderRule, ...] = tuple(
        EmailProviderRule(*rule) for rule in words.EMAIL_PROVIDERS
    )
    plus_tags_everywhere: bool = True
    placeholder_emails: tuple[str, ...] = words.PLACEHOLDER_EMAILS
    placeholder_local_parts: tuple[str, ...] = words.PLACEHOLDER_LOCAL_PARTS
    placeholder_domains: tuple[str, ...] = words.PLACEHOLDER_DOMAINS
    blocked_ips: tuple[str, ...] = words.BLOCKED_IPS
    block_private_ips: bool = True
    attribute_columns: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.default_region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"NormaliseSettings.default_region: unknown {self.default_region!r}")
        for key in self.attribute_columns:
            if not _IDENTIFIER.fullmatch(key) or key in LINKAGE_COLUMNS:
                raise ValueError(f"NormaliseSettings.attribute_columns: {key!r} is not usable")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NormaliseSettings:
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"NormaliseSettings: unknown settings {unknown}")
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
        }
        if "email_providers" in values:
            values["email_providers"] = tuple(
                EmailProviderRule(**rule) if isinstance(rule, Mapping) else rule
                for rule in values["email_providers"]
            )
        return cls(**values)


LINKAGE_COLUMNS: tuple[str, ...] = (
    "unique_id", "source_system", "source_id", "first_name", "last_name",
    "given_name_canonical", "date_of_birth", "email", "phone", "loyalty_id", "street_number",
    "address_line", "city", "postcode", "country", "device_id", "ip", "nulled",
)  # fmt: skip
_SOURCE_COLUMNS = (
    "source_system", "source_id", "email", "phone", "first_name", "last_name", "full_name",
    "address_line", "city", "postcode", "country", "date_of_birth", "device_id", "ip",
    "loyalty_id", "attributes",
)  # fmt: skip
_CHECKED = ("email", "phone", "loyalty_id", "date_of_birth", "device_id", "ip")
_PHONE_FUNCTION = "shelfwise_phone_e164"
_NICKNAME_TABLE = "shelfwise_nicknames"
_WORDS_BY_POSITION = 8
# A field as stages: each a dict of named SQL columns computed from the stage before.
_Stages = tuple[dict[str, str], ...]

_WHITESPACE = r"[\s\p{Z}\x{0B}\x{85}]"
# What collapsing whitespace changes: a run of it, or any whitespace but a plain space.
_UNTIDY = _WHITESPACE + (
    r"{2,}|[\t\n\f\r\x{0B}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]"
)

# --- SQL helpers -------------------------------------------------------------------------


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


# --- Expression builders: one per field --------------------------------------------------


def _name_sql(expr: str, *, keep_commas: bool = False) -> str:
    """Letters only, hyphens as spaces, apostrophes gone, titles and suffixes dropped.

    Hyphens become spaces so Smith-Jones meets Smith Jones; apostrophes vanish so O'Brien
    meets OBrien (forms that refuse either make people type the other).
    """
    keep = "," if keep_commas else ""
    x = f"regexp_replace({_folded(expr)}, '[^\\p{{L}}\\s\\p{{Z}}{keep}-]', '', 'g')"
    x = f"regexp_replace({x}, '[\\s\\p{{Z}}-]+', ' ', 'g')"
    x = f"regexp_replace({x}, '\\b{_alternation(words.NAME_AFFIXES)}\\b', '', 'g')"
    if keep_commas:
        x = f"trim(regexp_replace({x}, ' *, *', ',', 'g'), ',')"
    full = f"nullif(trim(regexp_replace({x}, ' +', ' ', 'g')), '')"
    # Most names are one plain word, for which all of the above is lower case: say so cheaply.
    affix = _in(f"lower({expr})", words.NAME_AFFIXES)
    plain = f"regexp_full_match({expr}, '[A-Za-z]+') AND NOT {affix}"
    return f"CASE WHEN {plain} THEN lower({expr}) ELSE {full} END"


def _names() -> _Stages:
    """First and last name; a full name fills both when neither is given ("Last, First")."""
    by_comma = "contains(_full, ',')"
    first = (
        f"CASE WHEN {by_comma} THEN split_part(trim(split_part(_full, ',', 2)), ' ', 1) "
        "ELSE split_part(_full, ' ', 1) END"
    )
    last = (
        f"CASE WHEN {by_comma} THEN trim(split_part(_full, ',', 1)) "
        "WHEN contains(_full, ' ') THEN string_split(_full, ' ')[-1] END"
    )
    return (
        {
            "_first": _name_sql("first_name"),
            "_last": _name_sql("last_name"),
            "_full": _name_sql("full_name", keep_commas=True),
        },
        {
            "_from_full": "_first IS NULL AND _last IS NULL AND _full IS NOT NULL",
            "_full_first": f"nullif(trim({first}), '')",
            "_full_last": f"nullif(trim({last}), '')",
        },
        {
            "_v_first_name": "CASE WHEN _from_full THEN _full_first ELSE _first END",
            "_v_last_name": "CASE WHEN _from_full THEN _full_last ELSE _last END",
        },
    )


def _canonical_sql(expr: str) -> str:
    """The formal form of a normalised first name (itself when it is no known variant)."""
    lookup = f"SELECT n.canonical FROM {_NICKNAME_TABLE} AS n WHERE n.nickname = {expr}"
    return f"coalesce(({lookup}), {expr})"


_EMAIL_SHAPE = r"[^@]+@[^@.]+(?:\.[^@.]+)+"


def _email(settings: NormaliseSettings) -> _Stages:
    """Case and spaces gone, then each provider's rules: dots, +tags, its canonical domain."""
    rules, domain = settings.email_providers, "_email_domain"
    renamed = [(r.domain, r.canonical_domain) for r in rules if r.domain != r.canonical_domain]
    when = " ".join(f"WHEN {_literal(a)} THEN {_literal(b)}" for a, b in renamed)
    tagged = _in(domain, [r.domain for r in rules if r.plus_tags])
    if settings.plus_tags_everywhere:
        tagged = f"({tagged} OR NOT {_in(domain, [r.domain for r in rules])})"
    dotless = _in(domain, [r.domain for r in rules if r.ignore_dots])
    reserved = f"regexp_matches(_email_host, '\\.{_alternation(words.RESERVED_EMAIL_TLDS)}$')"
    placeholder = " OR ".join(
        (
            _in("_email", settings.placeholder_emails),
            _in("_email_text", settings.placeholder_emails),
            _in("_email_user", settings.placeholder_local_parts),
            _in("_email_host", settings.placeholder_domains),
            "replace(_email_user, left(_email_user, 1), '') = ''",
        )
    )
    return (
        {"_email_text": f"lower({_squeezed('email')})"},
        {
            "_email_shaped": f"regexp_full_match(_email_text, '{_EMAIL_SHAPE}')",
            "_email_local": "split_part(_email_text, '@', 1)",
            "_email_domain": "split_part(_email_text, '@', 2)",
        },
        {
            "_email_box": f"CASE WHEN {tagged} THEN split_part(_email_local, '+', 1) "
            "ELSE _email_local END",
            "_email_host": f"CASE {domain} {when} ELSE {domain} END" if renamed else domain,
        },
        {
            "_email_user": f"CASE WHEN {dotless} THEN replace(_email_box, '.', '') "
            "ELSE _email_box END"
        },
        {
            "_email": "CASE WHEN _email_shaped THEN _email_user || '@' || _email_host "
            "ELSE _email_text END"
        },
        {
            "_why_email": "CASE WHEN _email_text IS NULL THEN NULL "
            f"WHEN NOT _email_shaped OR _email_user = '' OR {reserved} THEN 'email:invalid' "
            f"WHEN {placeholder} THEN 'email:placeholder' END"
        },
        {"_v_email": "CASE WHEN _why_email IS NULL THEN _email END"},
    )


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


def _phone(settings: NormaliseSettings) -> _Stages:
    """E.164 in ``default_region``; a run of one digit or a counting sequence is a placeholder."""
    code = phonenumbers.country_code_for_region(settings.default_region)
    runs = [f"{d}{{7,}}" for d in "0123456789"]
    dummy = _literal(f"(?:{code})?(?:{'|'.join([*runs, *words.PLACEHOLDER_PHONE_DIGITS])})")
    return (
        {"_phone_text": _clean("phone")},
        {"_phone_digits": "regexp_replace(_phone_text, '[^0-9]', '', 'g')"},
        {"_phone": _e164_sql("_phone_text", "_phone_digits", settings.default_region)},
        {
            "_why_phone": "CASE WHEN _phone_text IS NULL THEN NULL "
            f"WHEN regexp_full_match(_phone_digits, {dummy}) THEN 'phone:placeholder' "
            "WHEN _phone IS NULL THEN 'phone:invalid' END"
        },
        {"_v_phone": "CASE WHEN _why_phone IS NULL THEN _phone END"},
    )


def _loyalty() -> _Stages:
    """Digits only (cards are read aloud and keyed with spaces and dashes); all zeros is none."""
    return (
        {"_loyalty_text": _clean("loyalty_id")},
        {"_loyalty": f"nullif({_replace('_loyalty_text', '[^0-9]', '')}, '')"},
        {
            "_why_loyalty_id": "CASE WHEN _loyalty_text IS NULL THEN NULL "
            "WHEN _loyalty IS NULL THEN 'loyalty_id:invalid' "
            "WHEN ltrim(_loyalty, '0') = '' THEN 'loyalty_id:placeholder' END"
        },
        {"_v_loyalty_id": "CASE WHEN _why_loyalty_id IS NULL THEN _loyalty END"},
    )


def _date_of_birth() -> _Stages:
    dates = ", ".join(f"DATE '{d}'" for d in words.PLACEHOLDER_DATES)
    return (
        {
            "_why_date_of_birth": f"CASE WHEN date_of_birth IN ({dates}) "
            "THEN 'date_of_birth:placeholder' END"
        },
        {
            "_v_date_of_birth": "CASE WHEN _why_date_of_birth IS NULL "
            "THEN CAST(date_of_birth AS VARCHAR) END"
        },
    )


def _device() -> _Stages:
    return (
        {"_device": f"lower({_squeezed('device_id')})"},
        {
            "_why_device_id": "CASE WHEN regexp_full_match(_device, '[0:-]+') "
            f"OR {_in('_device', words.PLACEHOLDER_DEVICES)} THEN 'device_id:placeholder' END"
        },
        {"_v_device_id": "CASE WHEN _why_device_id IS NULL THEN _device END"},
    )


def _ip(settings: NormaliseSettings) -> _Stages:
    """IPv4 without leading zeros, IPv6 lower case; blocked and reserved ranges are nobody's."""
    quad = r"\d{1,3}(?:\.\d{1,3}){3}"
    octets = "CAST(string_split(_ip_text, '.') AS BIGINT[])"
    number = "_ip4[1] * 16777216 + _ip4[2] * 65536 + _ip4[3] * 256 + _ip4[4]"
    blocked = _in("_ip", settings.blocked_ips)
    if settings.block_private_ips:
        ranges = [ipaddress.ip_network(cidr) for cidr in words.RESERVED_IPV4]
        inside = " OR ".join(
            f"_ip_number BETWEEN {int(n.network_address)} AND {int(n.broadcast_address)}"
            for n in ranges
        )
        blocked = f"{blocked} OR {inside} OR regexp_full_match(_ip, '{words.RESERVED_IPV6}')"
    return (
        {"_ip_text": f"lower({_squeezed('ip')})"},
        {"_ip4": f"CASE WHEN regexp_full_match(_ip_text, '{quad}') THEN {octets} END"},
        {
            "_ip": "CASE WHEN list_max(_ip4) <= 255 THEN array_to_string(_ip4, '.') "
            "WHEN _ip4 IS NULL AND contains(_ip_text, ':') "
            "AND regexp_full_match(_ip_text, '[0-9a-f:.]+') THEN _ip_text END",
            "_ip_number": f"CASE WHEN list_max(_ip4) <= 255 THEN {number} END",
        },
        {
            "_why_ip": "CASE WHEN _ip_text IS NULL THEN NULL WHEN _ip IS NULL THEN 'ip:invalid' "
            f"WHEN {blocked} THEN 'ip:blocked' END"
        },
        {"_v_ip": "CASE WHEN _why_ip IS NULL THEN _ip END"},
    )


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


def _address() -> _Stages:
    """Street words and unit designators in one spelling; the house number on its own."""
    twice = "regexp_replace(_address_words, '\\bapt(?: apt)+\\b', 'apt', 'g')"
    return (
        *_place("_address", "address_line", keep="#"),
        *_words("_address_words", "_address", words.STREET_WORDS),
        {
            "_v_address_line": f"CASE WHEN contains(_address_words, 'apt apt') THEN {twice} "
            "ELSE _address_words END"
        },
        {"_v_street_number": "nullif(regexp_extract(_v_address_line, '^(\\d+)', 1), '')"},
    )


def _city() -> _Stages:
    return (*_place("_city", "city"), *_words("_v_city", "_city", words.CITY_WORDS))


def _postcode() -> _Stages:
    """Upper case, letters and digits only; a US ZIP+4 is its ZIP (the +4 is a delivery route)."""
    plain = f"nullif({_replace('_postcode', '[^A-Z0-9]', '')}, '')"
    return (
        {"_postcode": f"upper({_squeezed('postcode')})"},
        {
            "_v_postcode": "CASE WHEN regexp_full_match(_postcode, '\\d{5}-?\\d{4}') "
            f"THEN left(_postcode, 5) ELSE {plain} END"
        },
    )


def _country() -> _Stages:
    """ISO 3166 alpha-2 for the usual spellings; anything else upper-cased as written."""
    names = {name: code for code, spelt in words.COUNTRIES.items() for name in spelt}
    pairs = ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in names.items())
    short = _in("_country_key", [n for n in names if len(n) == 2])
    return (
        {
            "_country": _clean("country"),
            "_country_folded": _folded("country"),
        },
        {"_country_key": _replace("_country_folded", "[^a-z]", "")},
        {
            "_v_country": "CASE WHEN _country IS NULL THEN NULL "
            f"WHEN length(_country_key) = 2 AND NOT {short} THEN upper(_country_key) "
            f"ELSE coalesce(MAP {{{pairs}}}[_country_key], upper(_country)) END"
        },
    )


def _attribute_sql(key: str) -> str:
    value = _clean(f"json_extract_string(attributes, '$.{key}')")
    return f"CASE WHEN json_valid(attributes) THEN lower({value}) END"


# --- Composing the builders --------------------------------------------------------------


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


def _typed_source(source: str, columns: Collection[str] | None) -> str:
    """The source's own columns, typed; the ones it lacks as NULLs."""
    have = set(_SOURCE_COLUMNS if columns is None else columns)
    listed = []
    for name in _SOURCE_COLUMNS:
        kind = "DATE" if name == "date_of_birth" else "VARCHAR"
        value = f'TRY_CAST("{name}" AS {kind})' if name in have else f"CAST(NULL AS {kind})"
        listed.append(f"{value} AS {name}")
    return f"SELECT {', '.join(listed)} FROM {source} AS _source"


@cache
def _fields(settings: NormaliseSettings) -> tuple[tuple[tuple[str, ...], _Stages], ...]:
    """Every field's builder, with the source columns it reads."""
    return (
        (("first_name", "last_name", "full_name"), _names()), (("email",), _email(settings)),
        (("phone",), _phone(settings)), (("loyalty_id",), _loyalty()),
        (("date_of_birth",), _date_of_birth()), (("device_id",), _device()),
        (("ip",), _ip(settings)), (("address_line",), _address()), (("city",), _city()),
        (("postcode",), _postcode()), (("country",), _country()),
    )  # fmt: skip


def prepare_sql(
    source: str, settings: NormaliseSettings, columns: Collection[str] | None = None
) -> str:
    """A SELECT over relation ``source`` giving :data:`LINKAGE_COLUMNS` + attribute columns.

    ``columns`` are the columns ``source`` has (default: all of ``customer_records``); the
    others are taken as NULL, so a frame with names and addresses only still normalises, and
    a field none of whose columns is there is not computed at all (NULL, cheaply).
    Needs :func:`register_functions` on the connection that runs it.
    """
    have = set(_SOURCE_COLUMNS if columns is None else columns)
    active = [stages for reads, stages in _fields(settings) if have & set(reads)]
    made = {name for stages in active for stage in stages for name in stage}
    reasons = ", ".join(f"_why_{n}" for n in _CHECKED if f"_why_{n}" in made)
    outputs = {
        "unique_id": "source_system || ':' || source_id",
        "source_system": "source_system",
        "source_id": "source_id",
        "given_name_canonical": _canonical_sql("_linkage._v_first_name"),
        "nulled": f"list_filter([{reasons}], lambda w: w IS NOT NULL)"
        if reasons
        else "CAST([] AS VARCHAR[])",
    }
    listed = []
    for column in LINKAGE_COLUMNS:
        value = outputs.get(column, f"_v_{column}")
        needs = "_v_first_name" if column == "given_name_canonical" else value
        if needs.startswith("_") and needs not in made:
            value = "CAST(NULL AS VARCHAR)"
        listed.append(f"{value} AS {column}")
    listed += [f'{_attribute_sql(key)} AS "{key}"' for key in settings.attribute_columns]
    stages = _compose(_typed_source(source, columns), active)
    return f"SELECT {', '.join(listed)} FROM ({stages}) AS _linkage"


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


def register_functions(connection: duckdb.DuckDBPyConnection, settings: NormaliseSettings) -> None:
    """Register the phone UDF and the nickname table on ``connection`` (idempotent).

    Neither depends on ``settings`` (the region is an argument of the UDF, so one connection
    serves several settings); the parameter keeps the door open for settings-bound tables.
    """
    del settings
    found = connection.execute(
        "SELECT count(*) FROM duckdb_functions() WHERE function_name = ?", [_PHONE_FUNCTION]
    ).fetchall()
    if not found[0][0]:
        # Types by name: DuckDBPyType objects held by a UDF leak at exit (duckdb 2.0).
        connection.create_function(
            _PHONE_FUNCTION, _phone_udf, ["VARCHAR", "VARCHAR"], "VARCHAR",
            type=duckdb.func.ARROW, null_handling=duckdb.func.SPECIAL,
        )  # fmt: skip
    connection.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {_NICKNAME_TABLE} "
        "(nickname VARCHAR PRIMARY KEY, canonical VARCHAR NOT NULL)"
    )
    if not connection.execute(f"SELECT count(*) FROM {_NICKNAME_TABLE}").fetchall()[0][0]:
        rows = ", ".join(f"({_literal(n)}, {_literal(c)})" for n, c in words.nickname_pairs())
        connection.execute(f"INSERT INTO {_NICKNAME_TABLE} VALUES {rows}")


def prepare(
    connection: duckdb.DuckDBPyConnection, source: str, settings: NormaliseSettings
) -> duckdb.DuckDBPyRelation:
    """The linkage frame of relation ``source`` (a table, view or registered frame)."""
    register_functions(connection, settings)
    columns = connection.sql(f"SELECT * FROM {source} LIMIT 0").columns
    return connection.sql(prepare_sql(source, settings, columns))


# --- Single values: the same SQL on a private connection ---------------------------------


class _Evaluator:
    """A private in-memory DuckDB for single values, opened on first use, one query at a time."""

    def __init__(self) -> None:
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
                register_functions(self._connection, NormaliseSettings())
            rows = self._connection.execute(sql, list(parameters)).fetchall()
        return tuple(rows[0])


_ONE_ROW_SKIPS = "statistics_propagation,expression_rewriter,common_subexpressions,common_subplan"
_EVALUATOR = _Evaluator()


def _one(column: str, stages: _Stages, value: str | None, output: str = "") -> str | None:
    """``value`` as source ``column`` through one field's stages: ``_v_<column>`` or ``output``."""
    if value is None:
        return None
    query = _compose(_typed_source(f"(SELECT $1 AS {column})", [column]), [stages])
    sql = f"SELECT {output or f'_v_{column}'} FROM ({query}) AS _one"
    result: str | None = _EVALUATOR.run(sql, [value])[0]
    return result


def normalise_email(value: str | None, settings: NormaliseSettings | None = None) -> str | None:
    return _one("email", _email(settings or NormaliseSettings()), value)


def normalise_phone(value: str | None, settings: NormaliseSettings | None = None) -> str | None:
    return _one("phone", _phone(settings or NormaliseSettings()), value)


def normalise_name(value: str | None) -> str | None:
    return _one("first_name", _names(), value)


def canonical_given_name(value: str | None) -> str | None:
    """The formal form of a given name; a group key ``a|b`` for a nickname of both sexes."""
    return _one("first_name", _names(), value, _canonical_sql("_one._v_first_name"))


def normalise_address(value: str | None) -> str | None:
    return _one("address_line", _address(), value)


def normalise_postcode(value: str | None) -> str | None:
    return _one("postcode", _postcode(), value)


def normalise_country(value: str | None) -> str | None:
    return _one("country", _country(), value)


def _parameter(value: Any) -> Any:
    """A record's value as DuckDB takes it: attributes as JSON text, pandas' missing as None."""
    if isinstance(value, Mapping):
        return json.dumps(dict(value), default=str)
    return None if pd.api.types.is_scalar(value) and pd.isna(value) else value


def normalise_record(
    record: Mapping[str, Any], settings: NormaliseSettings | None = None
) -> dict[str, Any]:
    """One customer record (a mapping of customer_records columns) as one linkage row."""
    settings = settings or NormaliseSettings()
    present = [c for c in _SOURCE_COLUMNS if c in record]
    values = [_parameter(record[c]) for c in present]
    one = f"(SELECT {', '.join(f'${i + 1} AS {c}' for i, c in enumerate(present)) or 1})"
    result = _EVALUATOR.run(prepare_sql(one, settings, present), values)
    names = (*LINKAGE_COLUMNS, *settings.attribute_columns)
    return dict(zip(names, result, strict=True))
