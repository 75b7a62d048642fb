"""Tab-separated files with a header, for both models' readers: the named columns of every
non-empty line, and the conversions, each error naming the file and the line."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, Iterator, Sequence, Tuple


def tsv_records(path: Path, columns: Sequence[str]) -> Iterator[Tuple[int, Dict[str, str]]]:
    """(line number, {column: text}) for every non-empty line after the header, which must name
    every one of ``columns`` (in any order, among others); every line must have the header's
    number of fields."""
    with path.open("r", encoding="utf-8") as f:
        header = f.readline().rstrip("\n\r").split("\t")
        missing = [c for c in columns if c not in header]
        if missing:
            raise ValueError(
                f"{path}:1: missing column(s) {', '.join(missing)} in the header {header!r}; "
                f"expected tab-separated {', '.join(columns)}"
            )
        index = {c: header.index(c) for c in columns}
        for line_no, line in enumerate(f, start=2):
            line = line.rstrip("\n\r")
            if not line:
                continue
            fields = line.split("\t")
            if len(fields) != len(header):
                raise ValueError(f"{path}:{line_no}: expected {len(header)} tab-separated fields, got {len(fields)}")
            yield line_no, {c: fields[i] for c, i in index.items()}


def to_int(text: str, where: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{where}: {name} {text!r} is not an integer") from None


def to_finite_float(text: str, where: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: {name} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{where}: {name} {text!r} is not finite")
    return value
