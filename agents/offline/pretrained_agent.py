"""``PretrainedDQN``: the pretrain → fine-tune → serve loop as one agent the runner can build.

On construction it logs a behaviour policy in the training env's own world (or loads a logged
``.npz``), pre-trains with batch Q-learning (optionally conservative), seeds its replay with the
logged transitions, and from then on is a plain :class:`~agents.dqn.DQNAgent` learning online.

Why log on a *follower* of a freshly seeded copy of the world: ``OnlineAgent.learn`` starts the
stream with ``env.reset(seed=agent seed)``, so the world the agent is deployed in is the world of
that seed at clock 0. Logging there, with evaluation-style users (never the training users), is
"historical data of the platform before deployment".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agents.baselines import PopularityAgent
from agents.dqn import DQNAgent
from agents.offline.dataset import LoggedDataset, StochasticPolicy, collect_dataset
from agents.offline.pretrain import pretrain_dqn
from recsim_env import RecSimVectorEnv

BEHAVIOURS = {"popularity": PopularityAgent}


class PretrainedDQN(DQNAgent):
    """A DQN pre-trained on logged interactions before it learns online.

    ``dataset_path``: a logged ``.npz`` to pre-train on (else one is collected);
    ``behaviour`` (``popularity``), ``behaviour_steps``, ``behaviour_temperature``,
    ``behaviour_epsilon``: the logging policy, a softmax over its scores mixed with ε-uniform;
    ``pretrain_steps`` gradient steps with ``conservative_alpha`` (0: plain batch Q-learning, > 0:
    a CQL penalty). Every other keyword is a :class:`~agents.dqn.DQNAgent` hyperparameter; the
    defaults of ``epsilon_start``, ``epsilon_end`` (0.05) and ``learning_starts`` (0) differ from
    the DQN's so that the warm start is not thrown away.
    """

    def __init__(
        self,
        env: Any,
        *,
        dataset_path: str | None = None,
        behaviour: str = "popularity",
        behaviour_steps: int = 20_000,
        behaviour_temperature: float = 0.1,
        behaviour_epsilon: float = 0.1,
        pretrain_steps: int = 2_000,
        conservative_alpha: float = 0.0,
        epsilon_start: float = 0.05,
        epsilon_end: float = 0.05,
        learning_starts: int = 0,
        **dqn_kwargs: Any,
    ) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(
                f"invalid behaviour={behaviour!r}: expected one of {sorted(BEHAVIOURS)}"
            )
        for key, value in (
            ("behaviour_steps", behaviour_steps),
            ("pretrain_steps", pretrain_steps),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"invalid {key}={value!r}: expected an integer ≥ 1")
        if conservative_alpha < 0:
            raise ValueError(f"invalid conservative_alpha={conservative_alpha!r}: expected ≥ 0")
        # the warm start is the point: little initial exploration, learning from the first step
        warm_start = {
            "epsilon_start": epsilon_start,
            "epsilon_end": epsilon_end,
            "learning_starts": learning_starts,
        }
        super().__init__(env, **warm_start, **dqn_kwargs)
        pretrain = {
            "dataset_path": dataset_path,
            "behaviour": behaviour,
            "behaviour_steps": behaviour_steps,
            "behaviour_temperature": behaviour_temperature,
            "behaviour_epsilon": behaviour_epsilon,
            "pretrain_steps": pretrain_steps,
            "conservative_alpha": conservative_alpha,
        }
        self._hparams = {**getattr(self, "_hparams", {}), **pretrain}
        if dataset_path is not None:
            dataset = LoggedDataset.load(Path(dataset_path))
        else:
            dataset = self._log_behaviour(env, pretrain)
        self.pretrain_metrics = pretrain_dqn(
            self, dataset, steps=pretrain_steps, conservative_alpha=conservative_alpha,
            seed_agent_replay=True,
        )  # fmt: skip

    def _log_behaviour(self, env: Any, p: dict[str, Any]) -> LoggedDataset:
        base = getattr(env, "unwrapped", env)
        world_owner = RecSimVectorEnv(num_envs=1, **base.config.to_dict())
        world_owner.reset(seed=self.seed)  # the world this agent will be deployed in, at clock 0
        log_env = RecSimVectorEnv(
            num_envs=self.num_envs, world=world_owner.world, **base.config.to_dict()
        )
        scorer = BEHAVIOURS[p["behaviour"]](log_env)
        policy = StochasticPolicy(
            scorer,
            temperature=p["behaviour_temperature"],
            epsilon=p["behaviour_epsilon"],
            seed=self.seed,
        )
        return collect_dataset(log_env, policy, p["behaviour_steps"], seed=self.seed)

    @classmethod
    def load(  # type: ignore[override]  # deliberately a plain DQNAgent, not this class
        cls, path: str | Path, env: Any = None, **overrides: Any
    ) -> DQNAgent:
        """A saved pre-trained agent is a plain DQN (its pre-training lives in the weights), so
        loading never logs or pre-trains again."""
        return DQNAgent.load(path, env, **overrides)
