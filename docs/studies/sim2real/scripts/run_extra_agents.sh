#!/usr/bin/env bash
# Supplement to run_study.sh (report.md, "Ten agents"): four more agents (random, ε-greedy,
# Thompson sampling, discounted UCB) on both simulators, the same budget and seeds, into the same
# $RUNS, then every run (the six and the four) scored and analysed with all ten agents.
#   RUNS=/tmp/s2r_runs/study_v3 bash docs/studies/sim2real/scripts/run_extra_agents.sh
set -euo pipefail
PY=${PY:-python}
RUNS=${RUNS:-multirun/study_sim2real}
SEEDS=${SEEDS:-0 1 2 3 4}
OUT=${OUT:-docs/studies/sim2real/results_10_agents}
EXTRA=random,epsilon_greedy,thompson,ducb
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
read -r ITEMS TOPICS < <($PY -c "
import gymnasium, recsim_env
c = gymnasium.make('recsim_env/MovieLens-v0').unwrapped.config
print(c.num_items, c.num_topics)")
for s in $SEEDS; do
  $PY -m experiments.train experiment=study_sim2real seed="$s" agent=$EXTRA \
    hydra.sweep.dir="$RUNS/calibrated_extra/seed$s"
  $PY -m experiments.train experiment=study_sim2real_uncalibrated seed="$s" agent=$EXTRA \
    env.kwargs.num_items="$ITEMS" env.kwargs.num_topics="$TOPICS" \
    hydra.sweep.dir="$RUNS/uncalibrated_extra/seed$s"
done
$PY -m experiments.sim2real "$RUNS/calibrated" "$RUNS/uncalibrated" \
  "$RUNS/calibrated_extra" "$RUNS/uncalibrated_extra" --out "$RUNS/scores_all.json" --per-user
$PY docs/studies/sim2real/scripts/analyse.py "$RUNS/scores_all.json" --out "$OUT" \
  --agents dqn,pqn,linucb,swucb,greedy,popularity,epsilon_greedy,thompson,ducb,random
