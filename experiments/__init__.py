"""Experiments: the runner (:mod:`.run`), analysis (:mod:`.analysis`), tuning (:mod:`.tune`),
benchmarks (:mod:`.bench`) and integrations (:mod:`.integrations`); see ARCHITECTURE.md.

The flat modules at this level (``train``, ``compare``, ``bench_train``) are entry points kept for
existing commands (``python -m experiments.train``, ...); ``quickstart`` is ``make run``.
"""
