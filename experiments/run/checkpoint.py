"""Writing and restoring a complete checkpoint of a run — without pickle.

A checkpoint (a directory that :class:`~experiments.run.rundir.RunDir` renames into place whole)
holds the agent (``agent.save``; with its replay buffer when the agent's
``save_accepts_replay`` trait says it can and ``protocol.checkpoint_replay`` asks for it) and
everything else as one plain data tree (:mod:`recsim_env.state_io`: JSON + ``.npz``): the protocol's
state (clock, parts), the training env's ``state_dict()``, the metric writer's position and the
global RNG states (Python's ``random`` as lists, numpy's legacy state as an array, torch's as a
byte array), which SB3 draws from.

Last, ``manifest.json`` records the size and SHA-256 of every file, so that a checkpoint damaged
after it was written (a truncated file, a disk error) is recognised before anything is loaded
from it — whatever format the agent's own files have — and the runner can fall back to an older
one (:class:`CorruptCheckpoint`).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from agents.base import Agent, ContinuesStream, Resumable, agent_traits
from experiments.run.config import ProtocolConfig
from experiments.run.rundir import Checkpoint, RunDir, RunDirError
from experiments.run.sinks import MetricWriter
from recsim_env.state_io import load_tree, save_tree

FORMAT = 2  # 1: the pickled state.pkl of earlier versions


class StreamPosition(Protocol):
    """Where the stream stands: what the agent sees next."""

    @property
    def last_obs(self) -> Any: ...

    @property
    def last_info(self) -> Any: ...


class Checkpointed(Protocol):
    """What a checkpoint saves and restores of a run; the lifelong protocol is one. A structural
    type, so that this module does not import the protocol that calls it (no import cycle)."""

    settings: ProtocolConfig
    writer: MetricWriter
    run_dir: RunDir
    train_env: Any

    @property
    def num_timesteps(self) -> int: ...

    @property
    def state(self) -> StreamPosition: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


class CorruptCheckpoint(RunDirError):
    """A checkpoint whose files are damaged: not as written (truncated, missing, changed)."""


class UnusableCheckpoint(RunDirError):
    """An intact checkpoint that does not fit this run: another run's (another ``num_envs``,
    another run id) or one this agent cannot load. Skipped, never moved aside: the files are
    healthy and may fit once the config is fixed."""


class AgentMismatch(RunDirError):
    """The checkpoint was written by another agent class than the config builds."""


def global_rng_state() -> dict[str, Any]:
    import torch

    numpy_state = np.random.get_state()  # noqa: NPY002 — SB3 draws from the global numpy RNG
    return {
        "python": random.getstate(),
        "numpy": numpy_state,
        "torch": torch.get_rng_state().numpy(),  # a uint8 tensor: its bytes are the state
    }


def set_global_rng_state(state: dict[str, Any]) -> None:
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(torch.from_numpy(np.array(state["torch"], dtype=np.uint8)))


def _env_state(env: Any) -> dict[str, Any]:
    if not isinstance(env, Resumable):
        raise TypeError(f"the training env {type(env).__name__} has no state_dict(): cannot resume")
    return env.state_dict()


def save(run_dir: RunDir, protocol: Checkpointed, agent: Agent) -> Path:
    """Write the checkpoint of ``protocol``'s current step; returns its path."""
    with run_dir.new_checkpoint(protocol.num_timesteps) as ckpt:
        try:
            if protocol.settings.checkpoint_replay and agent_traits(agent).save_accepts_replay:
                agent.save(ckpt.agent, include_replay=True)  # type: ignore[call-arg]
            else:
                agent.save(ckpt.agent)
        except (OSError, RuntimeError) as exc:
            full = _disk_full_error(exc, ckpt.path, run_dir)
            if full is None:
                raise
            raise full from exc
        payload = {
            "format": FORMAT,
            "run_id": run_dir.run_id,
            "agent_class": f"{type(agent).__module__}.{type(agent).__qualname__}",
            "protocol": protocol.state_dict(),
            "settings": asdict(protocol.settings),
            "env": _env_state(protocol.train_env),
            "writer": protocol.writer.state_dict(),
            "rng": global_rng_state(),
        }
        save_tree(ckpt.state, payload)
        write_manifest(ckpt)
    return run_dir.checkpoint_path(protocol.num_timesteps)


def _disk_full_error(exc: BaseException, path: Path, run_dir: RunDir) -> OSError | None:
    """A full disk said plainly: torch reports it as ``[enforce fail at inline_container.cc:...]
    ... file write failed``, other writers as ``OSError(ENOSPC)``. ``None`` if it is not that."""
    import errno
    import shutil

    text = str(exc)
    nospace = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
    try:
        free = shutil.disk_usage(run_dir.path).free
    except OSError:
        free = None
    torch_write = "file write failed" in text or "inline_container" in text
    if not (nospace or torch_write):
        return None
    detail = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    room = f"{free >> 20} MiB free" if free is not None else "free space unknown"
    if nospace or (free is not None and free < 64 << 20):
        what = f"No space left on device ({room})"
    else:
        what = f"a write failed (a full disk or quota? {room})"
    return OSError(
        errno.ENOSPC if nospace or what.startswith("No space") else errno.EIO,
        f"cannot write the checkpoint {path}: {what}: {type(exc).__name__}: {detail}. Free some "
        f"space, then continue with `recsim-train resume={run_dir}` (the last complete "
        "checkpoint is kept)",
    )


# ---------------------------------------------------------------------------------------- integrity
def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()  # (hashlib.file_digest needs Python 3.11)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(ckpt: Checkpoint) -> None:
    """``manifest.json``: ``{relative path: {size, sha256}}`` of every file of the checkpoint."""
    entries = {
        str(p.relative_to(ckpt.path)): {"size": p.stat().st_size, "sha256": _sha256(p)}
        for p in _files(ckpt.path)
        if p != ckpt.manifest
    }
    ckpt.manifest.write_text(json.dumps({"files": entries}, indent=1, sort_keys=True) + "\n")


def damage(ckpt: Checkpoint) -> str | None:
    """What is wrong with ``ckpt``'s files (``None``: they are as written).

    Checkpoints written before manifests existed are only checked for their state file.
    """
    if ckpt.legacy:
        return (
            "written by an earlier version (pickled state.pkl), which cannot be resumed any more: "
            "start a fresh run"
        )
    if not ckpt.state.is_file():
        return f"no {ckpt.state.name}"
    if not ckpt.manifest.exists():
        return None
    try:
        entries = json.loads(ckpt.manifest.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"unreadable {ckpt.manifest.name} ({exc})"
    for name, entry in sorted(entries.items()):
        path = ckpt.path / name
        if not path.is_file():
            return f"{name} is missing"
        size = path.stat().st_size
        if size != entry["size"]:
            return f"{name} has {size} bytes, {entry['size']} were written (truncated?)"
        if _sha256(path) != entry["sha256"]:
            return f"{name} differs from what was written (SHA-256 mismatch)"
    return None


# ---------------------------------------------------------------------------------------- restore
def load_kwargs(agent_cls: type[Any], template: Any = None, *, trust: bool = False) -> dict:
    """The keyword arguments that ``agent_cls.load`` takes of the runner's: whether cloudpickled
    checkpoints may be loaded (``trust_checkpoints``, SB3's zips) and the inner agent's class that
    the (allow-listed) config built (``inner_class``, :class:`~agents.baselines.FrozenAgent`), so
    that no class is ever imported by a name read from the checkpoint."""
    import inspect

    try:
        params = inspect.signature(agent_cls.load).parameters
    except (TypeError, ValueError):
        return {}
    kwargs: dict[str, Any] = {}
    if "trust_checkpoints" in params:
        kwargs["trust_checkpoints"] = bool(trust)
    inner = getattr(template, "inner", None)
    if "inner_class" in params and inner is not None:
        kwargs["inner_class"] = type(inner)
    return kwargs


def restore(
    ckpt: Checkpoint, protocol: Checkpointed, agent_cls: type[Agent], **kwargs: Any
) -> Agent:
    """Put the run back where ``ckpt`` was taken; returns the agent (``agent_cls.load``).

    Everything is read and checked first; only then is anything changed, so a
    :class:`CorruptCheckpoint` (damaged files) or an :class:`UnusableCheckpoint` (intact, but
    another run's or not loadable here) leaves ``protocol`` as it was and the caller can try an
    older checkpoint. ``kwargs`` go to ``agent_cls.load`` (:func:`load_kwargs`).
    """
    problem = damage(ckpt)
    if problem is not None:
        raise CorruptCheckpoint(f"{ckpt.path}: {problem}")
    try:
        payload = load_tree(ckpt.state)
    except Exception as exc:  # intact per its manifest, but unreadable: written by something else
        raise UnusableCheckpoint(
            f"{ckpt.path}: cannot read {ckpt.state.name} ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UnusableCheckpoint(f"{ckpt.path}: not a checkpoint of format {FORMAT}")
    own_id = protocol.run_dir.run_id
    if payload.get("run_id") and own_id and payload["run_id"] != own_id:
        raise UnusableCheckpoint(
            f"{ckpt.path} belongs to another run (run id {payload['run_id']}, this run is {own_id})"
        )
    saved_class = str(payload.get("agent_class", ""))
    if saved_class and saved_class.rsplit(".", 1)[-1] != agent_cls.__qualname__.rsplit(".", 1)[-1]:
        raise AgentMismatch(
            f"{ckpt.path} was written by the agent {saved_class}, but the run's config builds "
            f"{agent_cls.__module__}.{agent_cls.__qualname__} (agent._target_ in config.yaml): "
            "fix the config to resume; the checkpoint is left as it is"
        )
    try:
        agent = agent_cls.load(ckpt.agent, env=protocol.train_env, **kwargs)
    except RunDirError:
        raise
    except Exception as exc:  # any loader's error on a file that is not this agent's
        if "trust_checkpoints" in str(exc):
            raise RunDirError(f"{ckpt.path}: {exc}") from exc
        raise UnusableCheckpoint(
            f"{ckpt.path}: cannot load it ({type(exc).__name__}: {exc})"
        ) from exc
    env = protocol.train_env
    if not isinstance(env, Resumable):
        raise TypeError(f"the training env {type(env).__name__} has no load_state_dict()")
    before = {
        "env": env.state_dict(),
        "protocol": protocol.state_dict(),
        "rng": global_rng_state(),
    }
    try:
        # the env first: another run's checkpoint (another num_envs) fails here, before the
        # writer truncates metrics.csv to the checkpoint's position
        env.load_state_dict(payload["env"])
        protocol.load_state_dict(payload["protocol"])
        set_global_rng_state(payload["rng"])
        protocol.writer.load_state_dict(payload["writer"])
    except Exception as exc:
        try:  # as it was, for an older checkpoint (which sets all of it again anyway)
            env.load_state_dict(before["env"])
            protocol.load_state_dict(before["protocol"])
            set_global_rng_state(before["rng"])
        except Exception:
            pass
        raise UnusableCheckpoint(
            f"{ckpt.path} does not fit this run ({type(exc).__name__}: {exc})"
        ) from exc
    # Hand the agent the observation (and info) it was about to act on: an agent without them
    # would reset, i.e. re-seed and re-create, the world at the next learn().
    if isinstance(agent, ContinuesStream) and protocol.state.last_obs is not None:
        agent.continue_stream(protocol.state.last_obs, protocol.state.last_info)
    return agent
