#!/usr/bin/env bash
# The sim-to-real study, end to end (docs/studies/sim2real/report.md). Run from the repository root:
#   bash docs/studies/sim2real/scripts/run_study.sh            # seeds 0 1 2
#   SEEDS="3 4" bash docs/studies/sim2real/scripts/run_study.sh  # more seeds into the same runs dir
# RUNS (default multirun/study_sim2real) and OUT (default docs/studies/sim2real/results) can be set.
# Needs MovieLens-100K (recsim-data fetch movielens-100k) and its calibration (built on first use
# of recsim_env/MovieLens-v0, or recsim-calibrate movielens-100k). Run dirs (with checkpoints, not
# committed) go to $RUNS; the scores and figures into docs/studies/sim2real/results/.
set -euo pipefail
PY=${PY:-python}
RUNS=${RUNS:-multirun/study_sim2real}
SEEDS=${SEEDS:-0 1 2}
OUT=${OUT:-docs/studies/sim2real/results}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

# the uncalibrated twin takes the calibration's catalogue size and topic count (the same layout)
read -r ITEMS TOPICS < <($PY -c "
import gymnasium, recsim_env
c = gymnasium.make('recsim_env/MovieLens-v0').unwrapped.config
print(c.num_items, c.num_topics)")
echo "calibrated layout: num_items=$ITEMS num_topics=$TOPICS"

# seed by seed, both simulators: whatever time allows leaves complete pairs
for s in $SEEDS; do
  $PY -m experiments.train experiment=study_sim2real seed="$s" \
    hydra.sweep.dir="$RUNS/calibrated/seed$s"
  $PY -m experiments.train experiment=study_sim2real_uncalibrated seed="$s" \
    env.kwargs.num_items="$ITEMS" env.kwargs.num_topics="$TOPICS" \
    hydra.sweep.dir="$RUNS/uncalibrated/seed$s"
done

mkdir -p "$OUT"
$PY -m experiments.sim2real "$RUNS/calibrated" "$RUNS/uncalibrated" \
  --out "$RUNS/scores.json" --per-user  # per-user metrics: large, kept beside the runs
$PY docs/studies/sim2real/scripts/analyse.py "$RUNS/scores.json" --out "$OUT"
