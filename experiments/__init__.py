"""Experiments: the runner (:mod:`.run`), analysis (:mod:`.analysis`), tuning (:mod:`.tune`),
benchmarks (:mod:`.bench`) and integrations (:mod:`.integrations`); see ARCHITECTURE.md.

The flat modules at this level (``train``, ``compare``, ``bench_train``, ``bench_sim``,
``lifelong_metrics``, ``config_validation``) are entry points and import names kept for existing
commands; ``quickstart`` is ``make run``.
"""
