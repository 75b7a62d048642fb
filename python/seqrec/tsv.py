"""Tab-separated files with a header, for both models' readers: the named columns of every
non-empty line, and the conversions, each error naming the file and the line."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, Iterator, Sequence, Tuple


def _first_bad_line(path: Path) -> ValueError:
    """The error naming the first line of ``path`` that is not UTF-8 (read again in bytes,
    only once decoding has failed)."""
    for line_no, raw in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as err:
            return ValueError(
                f"{path}:{line_no}: not UTF-8 text (byte 0x{raw[err.start]:02x} at column {err.start + 1}); "
                "convert the file to UTF-8"
            )
    return ValueError(f"{path}: not UTF-8 text; convert the file to UTF-8")


def tsv_records(path: Path, columns: Sequence[str]) -> Iterator[Tuple[int, Dict[str, str]]]:
    """(line number, {column: text}) for every non-empty line after the header, which must name
    every one of ``columns`` exactly once (in any order, among others); every line must have the
    header's number of fields. UTF-8 text (a byte-order mark is skipped; any line end: \\n,
    \\r\\n or \\r); a line that is not UTF-8 is an error naming it."""
    try:
        with path.open("r", encoding="utf-8-sig", newline=None) as f:
            yield from _records(path, f, columns)
    except UnicodeDecodeError:
        raise _first_bad_line(path) from None


def _records(path: Path, f, columns: Sequence[str]) -> Iterator[Tuple[int, Dict[str, str]]]:
    header = f.readline().rstrip("\n").split("\t")
    missing = [c for c in columns if c not in header]
    if missing:
        raise ValueError(
            f"{path}:1: missing column(s) {', '.join(missing)} in the header {header!r}; "
            f"expected tab-separated {', '.join(columns)}"
        )
    repeated = [c for c in columns if header.count(c) > 1]
    if repeated:
        raise ValueError(f"{path}:1: column(s) {', '.join(repeated)} appear more than once in the header {header!r}")
    index = {c: header.index(c) for c in columns}
    for line_no, line in enumerate(f, start=2):
        line = line.rstrip("\n")
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != len(header):
            raise ValueError(f"{path}:{line_no}: expected {len(header)} tab-separated fields, got {len(fields)}")
        yield line_no, {c: fields[i] for c, i in index.items()}


INT64 = (-(2**63), 2**63 - 1)


def to_int(text: str, where: str, name: str) -> int:
    """A whole number in int64's range (ids beyond it are an error, never wrapped)."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{where}: {name} {text!r} is not an integer") from None
    if not INT64[0] <= value <= INT64[1]:
        raise ValueError(f"{where}: {name} {text} is outside the 64-bit integer range")
    return value


def to_finite_float(text: str, where: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: {name} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{where}: {name} {text!r} is not finite")
    return value
