"""The plug-in agent of the docs (docs/plugin.md), as a file: ε-greedy on a click rate learned per topic.

It reaches ``recsim-train`` through ``PYTHONPATH`` and a config group on Hydra's search path only
(``../my_conf/agent/topic_ctr.yaml``): no fork of the project, no registry. Run by
``tests/docs/test_first_hour.py`` exactly as the first hour (docs/getting-started.md) shows it.
"""

import numpy as np

from agents import OnlineAgent


class TopicCTR(OnlineAgent):
    """ε-greedy on a click rate learned per topic."""

    def __init__(self, env, epsilon: float = 0.1, seed: int | None = None):
        super().__init__(env, seed=seed)
        self._hparams = {"epsilon": epsilon, "seed": seed}  # what save/load rebuild it from
        self.epsilon = epsilon
        self.clicks = np.ones(self.layout.num_topics)  # prior: 1 click in 2 shows
        self.shows = np.full(self.layout.num_topics, 2.0)

    def scores(self, obs):  # (B, C) estimated click rates
        return self.layout.candidate_topics(obs) @ (self.clicks / self.shows)

    def act(self, obs, *, explore=False, info=None):
        actions = self.scores(obs).argmax(axis=1)
        if explore:
            random = self.rng.random(len(actions)) < self.epsilon
            actions[random] = self.rng.integers(0, self.action_space.n, random.sum())
        return actions

    def observe(self, obs, actions, rewards, next_obs, terminated, truncated, info):
        shown = self.layout.candidate_topics(obs)[np.arange(len(actions)), actions]  # (B, K)
        self.shows += shown.sum(axis=0)
        self.clicks += shown.T @ info["clicked"]

    def state_dict(self):
        return {**super().state_dict(), "clicks": self.clicks, "shows": self.shows}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.clicks, self.shows = state["clicks"], state["shows"]
