"""The Q-learning core shared by our DQN (``agents.dqn``), the drift-adaptive DQN, PQN
(``agents.pqn``) and offline pre-training (``agents.offline``): Q-networks over candidates
(``network``), acting and env specs (``acting``), the TD update (``losses``), ε / learning-rate
schedules (``schedules``), the learners' common construction and checkpoint files (``learner``) and
the configs' shared keys (``config``).

Import from the modules; this package itself imports nothing, so that reading a config
(``agents.qlearning.config``) does not import torch.
"""
