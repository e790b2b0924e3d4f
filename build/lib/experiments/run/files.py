"""Files that a crash or a full disk cannot tear: whole files written atomically, line files
appended in whole lines.

Why: every reader of a run dir (``recsim-compare``, a resumed run, the sweep report) must find
files that parse, whatever moment the writer died at — a SIGKILL, the out-of-memory killer, a
full disk (``ENOSPC``).
"""

from __future__ import annotations

import csv
import errno
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)

DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})

__all__ = [
    "DISK_FULL",
    "open_lines",
    "read_metrics_csv",
    "to_jsonable",
    "truncate_torn_line",
    "write_json_atomic",
    "write_text_atomic",
]


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as JSON so that readers never see a half-written file (write + rename)."""
    text = json.dumps(to_jsonable(obj), indent=2, sort_keys=True, allow_nan=True) + "\n"
    write_text_atomic(path, text)


def write_text_atomic(path: str | Path, text: str, *, in_place_fallback: bool = False) -> None:
    """Write ``text`` so that readers never see a half-written file (write + fsync + rename).

    ``in_place_fallback``: if the temporary cannot be written for lack of space (``ENOSPC``,
    ``EDQUOT``), overwrite ``path`` in place instead: truncating it first frees its blocks, so a
    record of a failure can still be written on a full disk (at the price of atomicity).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        _write_file(tmp, text)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)  # never leave a half-written temporary (it holds space)
        if not (in_place_fallback and exc.errno in DISK_FULL):
            raise
        _write_file(path, text)


def _write_file(path: Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def to_jsonable(obj: Any) -> Any:
    """numpy scalars/arrays → Python; leaves NaN as NaN (JSON readers of pandas/json accept it)."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy scalar or array
        return to_jsonable(obj.tolist())
    return obj


def open_lines(path: str | Path, *, append: bool) -> IO[bytes]:
    """Open a line-oriented file for unbuffered writing; appending truncates a torn last line."""
    path = Path(path)
    if append and path.exists():
        truncate_torn_line(path)
        return open(path, "ab", buffering=0)  # the caller owns (and closes) it
    return open(path, "wb", buffering=0)


def truncate_torn_line(path: str | Path) -> int:
    """Cut ``path`` back to just after its last newline; returns the bytes removed."""
    with open(path, "r+b") as f:
        size = end = f.seek(0, os.SEEK_END)
        while end > 0:
            start = max(0, end - 65536)
            f.seek(start)
            chunk = f.read(end - start)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            end = start
        else:
            keep = 0
        if keep < size:
            f.truncate(keep)
            log.warning("%s: dropped a torn last line (%d bytes)", path, size - keep)
        return size - keep


def read_metrics_csv(path: str | Path) -> list[tuple[int, str, float]]:
    """Rows of a long-format metrics file; torn or malformed lines are skipped."""
    rows: list[tuple[int, str, float]] = []
    path = Path(path)
    if not path.exists():
        return rows
    with open(path, newline="") as f:
        reader = csv.reader(f)
        next(reader, None)  # header
        for row in reader:
            if len(row) != 3:
                continue
            try:
                rows.append((int(row[0]), row[1], float(row[2])))
            except ValueError:
                continue
    return rows
