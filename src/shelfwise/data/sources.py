"""Where rows come from: files, frames and SQL queries, read into something DuckDB can scan.

Every source is reduced to a SQL relation with one extra column, ``_row`` (the 1-based row
number in the source), so that a quarantined row can always be found again in its file. Files
are fingerprinted by their bytes, frames by their content, so re-ingesting the same data is
recognised whatever it is called.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson

ROW_COLUMN = "_row"
CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")


class SourceError(ValueError):
    """A source could not be read at all (missing file, unknown format, broken query)."""


@dataclass
class Source:
    """A readable relation: ``sql`` selects the source's columns plus ``_row``.

    ``frames`` are Arrow tables the SQL refers to by name; the store registers them on its
    connection before running the SQL.
    """

    name: str
    sql: str
    fingerprint: str
    frames: dict[str, pa.Table] = field(default_factory=dict)
    file_format: str = "frame"


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sha256_arrow(table: pa.Table) -> str:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue()).hexdigest()


def _with_row_numbers(table: pa.Table) -> pa.Table:
    names = table.column_names
    if len(set(names)) != len(names):
        raise SourceError(f"source has duplicated column names: {names}")
    if ROW_COLUMN in names:
        raise SourceError(f"source column {ROW_COLUMN!r} is reserved")
    rows = pa.array(range(1, table.num_rows + 1), type=pa.int64())
    return table.append_column(ROW_COLUMN, rows)


def _read_csv(path: Path) -> pa.Table:
    delimiter = "\t" if ".tsv" in path.name else ","
    parse = pacsv.ParseOptions(delimiter=delimiter)
    # Every column is read as text: the contract decides types, and a value that fails its
    # type is quarantined as it was written rather than coerced by a reader's guess.
    with pacsv.open_csv(path, parse_options=parse) as reader:
        names = reader.schema.names
    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in names}, strings_can_be_null=False
    )
    return pacsv.read_csv(path, parse_options=parse, convert_options=convert)


def _frame_to_arrow(frame: pd.DataFrame) -> pa.Table:
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Mixed-type object columns (a number beside a typo): keep them as text and let the
        # contract quarantine what does not parse.
        text = frame.copy()
        for column in text.columns:
            if text[column].dtype == object:
                text[column] = text[column].map(lambda v: None if v is None else str(v))
        return pa.Table.from_pandas(text, preserve_index=False)


def from_arrow(table: pa.Table, name: str, fingerprint: str | None = None) -> Source:
    table = _with_row_numbers(table)
    view = f"_src_{hashlib.sha1(name.encode()).hexdigest()[:10]}"
    return Source(
        name=name,
        sql=f"SELECT * FROM {view}",
        fingerprint=fingerprint or _sha256_arrow(table),
        frames={view: table},
    )


def from_file(path: str | Path) -> Source:
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"no such file: {path}")
    suffix = "".join(path.suffixes[-2:]).lower()
    name = str(path.resolve())
    fingerprint = _sha256_file(path)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        # DuckDB scans Parquet itself (fast, streaming) and numbers the rows of the file.
        return Source(
            name=name,
            sql=(
                f"SELECT * EXCLUDE (file_row_number), file_row_number + 1 AS {ROW_COLUMN} "
                f"FROM read_parquet({_sql_string(name)}, file_row_number = true)"
            ),
            fingerprint=fingerprint,
            file_format="parquet",
        )
    if any(suffix.endswith(s) for s in CSV_SUFFIXES):
        source = from_arrow(_read_csv(path), name, fingerprint)
        source.file_format = "csv"
        return source
    if any(suffix.endswith(s) for s in JSON_SUFFIXES):
        source = from_arrow(pajson.read_json(path), name, fingerprint)
        source.file_format = "jsonl"
        return source
    raise SourceError(
        f"{path}: unknown file format; expected CSV ({', '.join(CSV_SUFFIXES)}), "
        f"Parquet ({', '.join(PARQUET_SUFFIXES)}) or JSON lines"
    )


def from_sql(url: str, query: str) -> Source:
    """Rows of a SQL query against any SQLAlchemy database (PostgreSQL, SQLite, ...)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            frame = pd.read_sql_query(sa.text(query), connection)
    except sa.exc.SQLAlchemyError as error:
        raise SourceError(f"query failed on {engine.url!r}: {error}") from error
    finally:
        engine.dispose()
    return from_arrow(_frame_to_arrow(frame), f"sql {engine.url!r}: {query}")


def read_source(data: Any, *, name: str | None = None) -> Source:
    """A :class:`Source` from a path, a pandas/polars frame, an Arrow table, or a Source."""
    if isinstance(data, Source):
        return data
    if isinstance(data, str | Path):
        return from_file(data)
    if isinstance(data, pd.DataFrame):
        return from_arrow(_frame_to_arrow(data), name or "pandas frame")
    if isinstance(data, pa.Table):
        return from_arrow(data, name or "arrow table")
    if type(data).__module__.startswith("polars"):
        return from_arrow(data.to_arrow(), name or "polars frame")
    raise SourceError(
        f"cannot read {type(data).__name__}: pass a file path, a pandas or polars frame, "
        "an Arrow table, or a SQL query"
    )
