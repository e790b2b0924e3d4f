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
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agents.base import Agent, ContinuesStream, Resumable, agent_traits
from experiments.run.rundir import Checkpoint, RunDir, RunDirError
from recsim_env.state_io import load_tree, save_tree

if TYPE_CHECKING:
    from experiments.run.protocol import LifelongProtocol

FORMAT = 2  # 1: the pickled state.pkl of earlier versions


class CorruptCheckpoint(RunDirError):
    """A checkpoint that cannot be loaded (damaged, incomplete, or not loadable by this agent)."""


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


def save(run_dir: RunDir, protocol: LifelongProtocol, agent: Agent) -> Path:
    """Write the checkpoint of ``protocol``'s current step; returns its path."""
    with run_dir.new_checkpoint(protocol.num_timesteps) as ckpt:
        if protocol.settings.checkpoint_replay and agent_traits(agent).save_accepts_replay:
            agent.save(ckpt.agent, include_replay=True)  # type: ignore[call-arg]
        else:
            agent.save(ckpt.agent)
        payload = {
            "format": FORMAT,
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
def restore(ckpt: Checkpoint, protocol: LifelongProtocol, agent_cls: type[Agent]) -> Agent:
    """Put the run back where ``ckpt`` was taken; returns the agent (``agent_cls.load``).

    Everything is read first; only then is anything changed, so a :class:`CorruptCheckpoint`
    (the checkpoint is damaged or cannot be loaded) leaves ``protocol`` as it was and the caller
    can try an older checkpoint.
    """
    problem = damage(ckpt)
    if problem is not None:
        raise CorruptCheckpoint(f"{ckpt.path}: {problem}")
    try:
        payload = load_tree(ckpt.state)
        agent = agent_cls.load(ckpt.agent, env=protocol.train_env)
    except Exception as exc:  # any loader's error on a damaged file: zip, torch, JSON, npz ...
        raise CorruptCheckpoint(
            f"{ckpt.path}: cannot load it ({type(exc).__name__}: {exc})"
        ) from exc
    env = protocol.train_env
    if not isinstance(env, Resumable):
        raise TypeError(f"the training env {type(env).__name__} has no load_state_dict()")
    env.load_state_dict(payload["env"])
    protocol.writer.load_state_dict(payload["writer"])
    set_global_rng_state(payload["rng"])
    protocol.load_state_dict(payload["protocol"])
    # Hand the agent the observation (and info) it was about to act on: an agent without them
    # would reset, i.e. re-seed and re-create, the world at the next learn().
    if isinstance(agent, ContinuesStream) and protocol.state.last_obs is not None:
        agent.continue_stream(protocol.state.last_obs, protocol.state.last_info)
    return agent
