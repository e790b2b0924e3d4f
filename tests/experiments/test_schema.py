"""One metric schema: what the runner writes is what the schema lists; one direction rule."""

from __future__ import annotations

import json
import math

from experiments.analysis import schema
from experiments.run.job import run

# summary.json keys that are not metrics (bookkeeping of the run)
NOT_METRICS = {
    "status",
    "num_timesteps",
    "total_steps",
    "eval/ndcg_k",
    "lifelong/drift_event_steps",
    "wall_time_s",
    "run_dir",
}


def test_the_runner_writes_exactly_the_schema(tmp_path, tiny_cfg):
    run(tiny_cfg("agent=random"), run_dir=tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    metrics = set(summary) - NOT_METRICS
    allowed = set(schema.summary_metric_names())
    assert metrics <= allowed, metrics - allowed
    # random does not train, has no click model; the frozen copies and the references are
    # measured on request only
    optional = {
        *schema.TRAIN_KEYS,
        *schema.CLICK_KEYS,
        *schema.FROZEN_RECOVERY_KEYS,
        *schema.REFERENCE_KEYS,
    }
    # random ranks (at random): recall@k is defined for it, beside the ceiling of the same batch
    assert set(schema.RANKING_KEYS) <= metrics
    missing = allowed - metrics - optional
    assert not missing, missing
    logged = {line.split(",")[1] for line in (tmp_path / "metrics.csv").read_text().split()[1:]}
    assert logged <= set(schema.SCHEMA), logged - set(schema.SCHEMA)


def test_directions_and_formats():
    assert schema.metric("online/reward").direction == "higher"
    assert schema.lower_is_better("online/regret_final")  # a _final key is its base key's
    assert schema.metric("online/drift_events").direction == "neutral"
    assert schema.optimization_direction("online/drift_events") == "maximize"
    assert schema.lower_is_better("train/critic_loss")  # an SB3 key outside the schema
    assert not schema.lower_is_better("train/explained_variance")
    assert schema.arrow("eval/return") == "↑" and schema.arrow("eval/regret") == "↓"
    assert schema.better("eval/regret", words=True) == "lower is better"
    assert schema.format_value("time/sps", 12345.6) == "12,346"
    assert schema.format_value("eval/return", math.nan) == "n/a"
    rows = schema.table_rows({"eval/return": 1.23456, "eval/ctr": math.nan}, schema.EVAL_KEYS)
    assert rows == [("eval/return", "1.235")]
    for key in schema.summary_metric_names():
        assert schema.metric(key).name and schema.metric(key).key == key


def test_run_labels_and_names_are_derived_once():
    config = {"agent": {"_target_": "agents.dqn.DQNAgent"}, "env": {"id": "recsim_env/X-v0"}}
    config["seed"] = 3
    assert schema.run_labels(config) == {"agent": "DQNAgent", "env": "X-v0", "drift": "default"}
    assert schema.run_labels(config, {"agent": "dqn"})["agent"] == "dqn"
    config["env"]["kwargs"] = {"drift": [{"schedule": "periodic"}]}
    assert schema.run_labels(config)["drift"] == "custom"
    assert schema.run_name(config, {"agent": "dqn", "env": "x"}, job_num=2) == "2-dqn-x-s3"
