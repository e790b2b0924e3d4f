"""Reading W&B: offline run logs (``run-*.wandb``) without network, and whether credentials exist.

:func:`read_offline_run` reads a ``run-*.wandb`` transaction log back (history, summary, config,
run metadata, exit code) with W&B's own protobuf schema, without network. wandb 0.31 no longer
ships a Python reader for these files (``wandb.sdk.internal.datastore`` is gone), so the framing
(LevelDB-log style blocks, W&B header) is decoded here. :func:`api_key_configured` says whether
the online API could be used (the sink's ``auto`` mode, ``recsim-compare --wandb-project``).
"""

from __future__ import annotations

import json
import netrc
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_BASE_URL = "https://api.wandb.ai"


def api_key_configured(base_url: str | None = None) -> bool:
    """Whether W&B credentials are available without asking anyone (env var or netrc).

    Only answers yes/no; the key itself is left to wandb.
    """
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    base_url = base_url or os.environ.get("WANDB_BASE_URL") or DEFAULT_BASE_URL
    host = urlsplit(base_url).hostname
    if not host:
        return False
    path = os.environ.get("NETRC")
    if not path:
        home = Path.home()
        path = str(home / ("_netrc" if os.name == "nt" else ".netrc"))
    try:
        creds = netrc.netrc(path).authenticators(host)
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return bool(creds and creds[2])


_BLOCK_LEN = 32768
_HEADER_LEN = 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4
_MAGIC = 0xBEE1
_CRC_SEED = [0] + [zlib.crc32(bytes([t])) & 0xFFFFFFFF for t in range(1, 5)]


def iter_wandb_records(path: str | Path) -> Any:
    """Yield the ``wandb_internal_pb2.Record`` messages of a ``run-*.wandb`` file, in order.

    A truncated tail (a run killed mid-write) ends the iteration; a checksum mismatch raises.
    """
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    if len(data) < _HEADER_LEN:
        return
    ident, magic, version = struct.unpack("<4sHB", data[:_HEADER_LEN])
    if ident != b":W&B" or magic != _MAGIC:
        raise ValueError(f"{path} is not a W&B transaction log (header {data[:7]!r})")
    pos, pending = _HEADER_LEN, b""
    while True:
        if _BLOCK_LEN - pos % _BLOCK_LEN < _HEADER_LEN:  # the block's tail is zero padding
            pos += _BLOCK_LEN - pos % _BLOCK_LEN
        if pos + _HEADER_LEN > len(data):
            return
        checksum, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER_LEN])
        pos += _HEADER_LEN
        chunk = data[pos : pos + length]
        pos += length
        if len(chunk) < length or kind not in (_FULL, _FIRST, _MIDDLE, _LAST):
            return  # truncated or zero-filled tail
        if zlib.crc32(chunk, _CRC_SEED[kind]) & 0xFFFFFFFF != checksum:
            raise ValueError(f"{path}: record checksum mismatch at byte {pos - length}")
        if kind == _FIRST:
            pending = chunk
            continue
        if kind == _MIDDLE:
            pending += chunk
            continue
        payload = chunk if kind == _FULL else pending + chunk
        pending = b""
        record = pb.Record()
        record.ParseFromString(payload)
        yield record


def _item_key(item: Any) -> str:
    return "/".join(item.nested_key) if item.nested_key else item.key


def _item_value(item: Any) -> Any:
    return json.loads(item.value_json) if item.value_json else None


@dataclass
class OfflineRun:
    """What an offline W&B run recorded (see :func:`read_offline_run`)."""

    path: Path
    run_id: str = ""
    project: str = ""
    group: str = ""
    job_type: str = ""
    name: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)  # rows incl. "_step"
    summary: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None  # None: the run never finished (still running or killed)

    def metric_rows(self) -> list[tuple[int, str, float]]:
        """``(step, key, value)`` for every logged metric (W&B's own ``_*`` keys left out)."""
        rows = []
        for row in self.history:
            step = int(row.get("_step", 0))
            for key, value in row.items():
                if (
                    key.startswith("_")
                    or isinstance(value, bool)
                    or not isinstance(value, int | float)
                ):
                    continue
                rows.append((step, key, float(value)))
        return rows


def find_offline_run_files(path: str | Path) -> list[Path]:
    """``run-*.wandb`` files at/under ``path`` (a file, an ``offline-run-*`` dir, a ``wandb`` dir or
    a dir holding one), oldest first; the ``latest-run`` link is skipped."""
    path = Path(path)
    if path.is_file():
        return [path]
    files = [
        p
        for p in path.rglob("run-*.wandb")
        if "latest-run" not in p.parts and not p.parent.is_symlink()
    ]
    return sorted(files, key=lambda p: p.parent.name)


def read_offline_run(path: str | Path) -> OfflineRun:
    """Read an offline run (a ``run-*.wandb`` file or its ``offline-run-*`` dir) without network."""
    files = find_offline_run_files(path)
    if not files:
        raise FileNotFoundError(f"no run-*.wandb file at {path}")
    if len(files) > 1 and Path(path).is_dir():
        raise ValueError(f"{path} holds {len(files)} W&B runs; pass one of them: {files}")
    out = OfflineRun(path=files[0])
    for record in iter_wandb_records(files[0]):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            out.run_id, out.project, out.group = r.run_id, r.project, r.run_group
            out.job_type, out.name, out.tags = r.job_type, r.display_name, list(r.tags)
            for item in r.config.update:
                out.config[_item_key(item)] = _item_value(item)
        elif kind == "config":
            for item in record.config.update:
                out.config[_item_key(item)] = _item_value(item)
            for item in record.config.remove:
                out.config.pop(_item_key(item), None)
        elif kind == "history":
            row = {_item_key(item): _item_value(item) for item in record.history.item}
            row.setdefault("_step", int(record.history.step.num))
            out.history.append(row)
        elif kind == "summary":
            for item in record.summary.update:
                out.summary[_item_key(item)] = _item_value(item)
            for item in record.summary.remove:
                out.summary.pop(_item_key(item), None)
        elif kind == "exit":
            out.exit_code = int(record.exit.exit_code)
    out.config.pop("_wandb", None)
    return out
