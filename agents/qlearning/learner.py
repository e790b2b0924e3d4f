"""What our torch Q-learners (``DQNAgent``, ``PQNAgent``) do alike: build from a config or keyword
hyperparameters, resolve device and action space, initialise networks without disturbing the
global torch stream, and write / read their checkpoint file.

A checkpoint is ``torch.save`` of the agent's ``state_dict()``: tensors and plain Python types
only, read back with ``torch.load(weights_only=True)`` (safe on untrusted files). Its ``config``
entry rebuilds the agent; the class name and format are checked by each agent's
``load_state_dict``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
import torch

from agents.base import OnlineAgent
from agents.qlearning.acting import EnvSpec, parse_action_space, resolve_device, score_all
from agents.qlearning.network import CandidateQNetwork, MlpQNetwork
from agents.qlearning.schedules import ScheduledLearner

if TYPE_CHECKING:
    from agents.qlearning.config import QConfig

L = TypeVar("L", bound="QLearner")
T = TypeVar("T")


class QLearner(ScheduledLearner, OnlineAgent):
    """Base of our torch Q-learners; ``config_class`` is the agent's :class:`QConfig` dataclass.

    Build with keyword hyperparameters (``Agent(env, gamma=0.9)``, which is what
    ``hydra.utils.instantiate`` does) or with a ready ``config=...`` (keywords then override it).
    """

    config_class: ClassVar[type[Any]]
    config: Any
    q_net: CandidateQNetwork | MlpQNetwork
    _rows_per_user: int

    def __init__(self, env: Any, config: QConfig | None = None, **hyperparameters: Any) -> None:
        cls = self.config_class
        cfg: Any = config
        if cfg is None:
            cfg = cls.from_dict(hyperparameters)
        elif hyperparameters:
            cfg = cls.from_dict({**cfg.to_dict(), **hyperparameters})
        super().__init__(env, seed=cfg.seed)
        self.config = cfg
        self._hparams = cfg.to_dict()
        if cfg.torch_threads is not None:
            torch.set_num_threads(cfg.torch_threads)
        self.device = resolve_device(cfg.device, key=f"{cls.__name__}.device")
        self.num_candidates, self.slate_size = parse_action_space(
            self.action_space, type(self).__name__
        )
        if self.num_candidates != self.layout.num_candidates:
            raise ValueError(
                f"action space has {self.num_candidates} candidates but the observation layout "
                f"{self.layout.num_candidates}"
            )
        self._rows_per_user = self.num_candidates if cfg.network == "candidate" else 1

    def _init_networks(self, build: Callable[[], T]) -> T:
        """``build()`` seeded from the agent's own generator, inside a forked torch RNG, so that
        building an agent never disturbs the global torch stream."""
        init_seed = int(self.rng.integers(2**63 - 1))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            return build()

    def _score_all(self, obs: torch.Tensor) -> torch.Tensor:
        """Q-values ``(B, C)`` of the online network without autograd: every forward pass that
        acts, ranks or values states goes through here (population training,
        :mod:`agents.population`, routes it to one batched computation over its members)."""
        return score_all(self.q_net, obs, self._rows_per_user)

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Q-value of every candidate, ``(B, C)`` float32 (also a ranking score for evaluation)."""
        obs = np.asarray(obs, dtype=np.float32)
        batched = np.ascontiguousarray(obs.reshape(-1, obs.shape[-1]))
        q = self._score_all(torch.from_numpy(batched).to(self.device))
        return q.cpu().numpy().reshape(*obs.shape[:-1], self.num_candidates)

    # ------------------------------------------------------------------ persistence
    def _write(self, path: str | Path, state: dict[str, Any]) -> None:
        """Atomic ``torch.save`` of ``state`` (the env is checkpointed by the runner)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(state, tmp)
        tmp.replace(path)

    @classmethod
    def load(cls: type[L], path: str | Path, env: Any = None, **overrides: Any) -> L:
        """Rebuild from a checkpoint (read with ``weights_only=True``: safe on untrusted files).
        ``env`` is needed to keep learning; without it the agent can still act (its spaces are
        rebuilt from the checkpoint). ``overrides`` replace config values that do not change the
        learned state (e.g. ``device``, ``torch_threads``)."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        config = cls.config_class.from_dict({**state["config"], **overrides})
        if env is None:
            env = EnvSpec.from_state(state["env_spec"])
        agent = cls(env, config=config)
        agent.load_state_dict(state)
        return agent
