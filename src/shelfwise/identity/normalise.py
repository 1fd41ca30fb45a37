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
SQL helpers live in :mod:`~shelfwise.identity._sql`, the phone code (E.164 in SQL and by UDF)
in :mod:`~shelfwise.identity._phones`, the word lists in :mod:`~shelfwise.identity._vocabulary`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import duckdb
import phonenumbers

from shelfwise.identity import _vocabulary as words
from shelfwise.identity._phones import _phone, _register_phone_function
from shelfwise.identity._sql import (
    _alternation,
    _clean,
    _compose,
    _Evaluator,
    _folded,
    _in,
    _literal,
    _parameter,
    _place,
    _replace,
    _squeezed,
    _Stages,
    _words,
)


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
_NICKNAME_TABLE = "shelfwise_nicknames"

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
        (("phone",), _phone(settings.default_region)), (("loyalty_id",), _loyalty()),
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


def register_functions(connection: duckdb.DuckDBPyConnection, settings: NormaliseSettings) -> None:
    """Register the phone UDF and the nickname table on ``connection`` (idempotent).

    Neither depends on ``settings`` (the region is an argument of the UDF, so one connection
    serves several settings); the parameter keeps the door open for settings-bound tables.
    """
    del settings
    _register_phone_function(connection)
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


_EVALUATOR = _Evaluator(lambda connection: register_functions(connection, NormaliseSettings()))


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
    return _one("phone", _phone((settings or NormaliseSettings()).default_region), value)


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
