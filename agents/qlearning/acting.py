"""Acting with a Q-network over candidates, shared by our Q-learners (``DQNAgent``, ``PQNAgent``).

* Single-item mode (``Discrete(C)``): greedy is the argmax over candidates; the state value is
  the max Q-value.
* Slate mode (``MultiDiscrete([C] * k)``): the value of a slate is the mean of its items'
  Q-values (a documented approximation), so greedy is the top-k candidates by Q (ordered, best
  first), exploration picks k distinct random candidates, and the state value is the mean of the
  top-k Q-values.

Also here: what an agent needs of an env to act when it is loaded without one (:class:`EnvSpec`),
device resolution and the optimiser both learners build.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import gymnasium
import numpy as np
import torch

from recsim_env.observation import ObsLayout


def parse_action_space(space: gymnasium.Space, owner: str = "agent") -> tuple[int, int]:
    """``(C, k)``: the number of candidates and the slate size (0 in single-item mode)."""
    if isinstance(space, gymnasium.spaces.Discrete):
        return int(space.n), 0
    if isinstance(space, gymnasium.spaces.MultiDiscrete) and space.nvec.ndim == 1:
        nvec = np.unique(space.nvec)
        if len(nvec) == 1 and len(space.nvec) <= nvec[0]:
            return int(nvec[0]), len(space.nvec)
    raise TypeError(f"{owner} needs Discrete(C) or MultiDiscrete([C] * k) actions, got {space!r}")


CPU_CHUNK_ROWS = 4096  # candidate rows per forward chunk on CPU (activations stay in L2 cache)


def score_all(net: torch.nn.Module, obs: torch.Tensor, rows_per_user: int) -> torch.Tensor:
    """``net(obs)`` without autograd, in chunks of users on CPU.

    ``rows_per_user``: rows of activations per user (``C`` for the per-candidate network, 1 for
    the flat MLP).

    A per-candidate network over many users makes ``(B·C, hidden)`` activations that no longer fit
    in cache; its elementwise layers (ReLU, LayerNorm) are then bound by memory bandwidth.
    Chunks of about ``CPU_CHUNK_ROWS`` candidate rows keep them in cache (measured: about 2× faster
    at B = 2,048 on a shared machine; the same result row for row). On a GPU one launch is best.
    """
    with torch.no_grad():
        users = max(1, CPU_CHUNK_ROWS // max(rows_per_user, 1))
        if obs.device.type != "cpu" or obs.shape[0] <= users:
            return net(obs)
        return torch.cat([net(part) for part in obs.split(users)])


def greedy_actions(q: torch.Tensor, slate_size: int) -> torch.Tensor:
    """``(B,)`` argmax, or ``(B, k)`` top-k candidates (best first) in slate mode."""
    if slate_size:
        return torch.topk(q, slate_size, dim=1).indices
    return q.argmax(dim=1)


def state_values(q: torch.Tensor, slate_size: int) -> torch.Tensor:
    """``V(s)`` of the greedy action, ``(B,)``: max Q, or the mean of the top-k in slate mode."""
    if slate_size:
        return torch.topk(q, slate_size, dim=1).values.mean(dim=1)
    return q.max(dim=1).values


def random_actions(
    rng: np.random.Generator, n: int, num_candidates: int, slate_size: int
) -> np.ndarray:
    """Uniform actions: one candidate, or k distinct candidates, per row."""
    if slate_size:
        return np.argsort(rng.random((n, num_candidates)), axis=1)[:, :slate_size]
    return rng.integers(0, num_candidates, size=n)


def resolve_device(name: str, key: str = "device") -> torch.device:
    """``auto`` → CUDA when available, else CPU; an explicit CUDA device must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"{key}={name!r} is invalid: CUDA is not available here")
    return torch.device(name)


def make_adam(
    params: list[torch.nn.Parameter], lr: float, capturable: bool = False
) -> torch.optim.Adam:
    """Fused Adam (one kernel for all parameters; much less overhead on small networks) where the
    device supports it, else the multi-tensor one. Same update rule either way. ``capturable``:
    state and learning rate on the device, as a CUDA graph needs (set the rate with
    ``group["lr"].fill_(...)``)."""
    if capturable:
        device = params[0].device
        return torch.optim.Adam(
            params, lr=torch.tensor(lr, device=device), fused=True, capturable=True
        )
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(params, lr=lr, foreach=True)


@dataclass
class EnvSpec:
    """What an agent needs of an env to act, rebuilt from a checkpoint loaded without one."""

    obs_layout: ObsLayout
    single_action_space: gymnasium.Space
    num_envs: int

    @property
    def action_space(self) -> gymnasium.Space:  # OnlineAgent.__init__ reads it eagerly
        return self.single_action_space

    @staticmethod
    def state(layout: ObsLayout, slate_size: int, num_envs: int) -> dict[str, Any]:
        """Plain-data description for a checkpoint: every :class:`ObsLayout` field (the item width
        depends on more than candidates and topics: long-term signals, item embeddings), the slate
        size and the number of users."""
        return {
            "num_candidates": layout.num_candidates,
            "num_topics": layout.num_topics,
            "user_dim": layout.user_dim,
            "obs_layout": asdict(layout),
            "slate_size": slate_size,
            "num_envs": num_envs,
        }

    @classmethod
    def from_state(cls, spec: dict[str, Any]) -> EnvSpec:
        if "obs_layout" in spec:
            layout = ObsLayout(**spec["obs_layout"])
        else:  # checkpoints written before the full layout was stored (no item signals then)
            layout = ObsLayout(spec["num_candidates"], spec["num_topics"], spec["user_dim"])
        c, k = spec["num_candidates"], spec["slate_size"]
        space = gymnasium.spaces.MultiDiscrete([c] * k) if k else gymnasium.spaces.Discrete(c)
        return cls(layout, space, int(spec["num_envs"]))


def to_torch(tree: Any) -> Any:
    """numpy arrays → tensors, recursively (``torch.load(weights_only=True)`` rejects numpy)."""
    if isinstance(tree, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(tree))
    if isinstance(tree, dict):
        return {k: to_torch(v) for k, v in tree.items()}
    return tree


def to_numpy(tree: Any) -> Any:
    if isinstance(tree, torch.Tensor):
        return tree.numpy()
    if isinstance(tree, dict):
        return {k: to_numpy(v) for k, v in tree.items()}
    return tree
