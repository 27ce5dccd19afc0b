"""Provenance and logging: run.json, __version__, plasticity columns, --eval-every and TensorBoard hparams."""

from __future__ import annotations

import csv
import json
import math
import platform
from pathlib import Path

import numpy as np
import pytest
import torch

import agents
import envs
import plastic_core
from agents.cli import train
from agents.logger import MetricsLog, read_metrics
from agents.provenance import RUN_FILE, git_info, kernel_path, provenance, write_run_json

PLASTIC_COLUMNS = ("hebb_abs", "modulation_abs", "eta", "alpha_abs")
RUN_KEYS = {"version", "git", "python", "torch", "numpy", "gymnasium", "kernel", "threads", "device", "hostname",
            "platform", "cpu", "started", "resumed", "start_iteration", "sessions"}


def tiny_run(out: Path, *extra: str, core: str = "modulated", episodes: int = 16) -> None:
    assert train.main(["--env", "Plastic/ReversalBandit-v0", "--core", core, "--hidden", "8", "--episodes",
                       str(episodes), "--batch", "4", "--seed", "0", "--out", str(out), "--no-progress",
                       *extra]) == 0


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    made = {"modulated": root / "modulated", "eval": root / "eval", "rnn": root / "rnn",
            "retroactive": root / "retroactive"}
    tiny_run(made["modulated"])
    tiny_run(made["eval"], "--eval-every", "2")
    tiny_run(made["rnn"], core="rnn")
    tiny_run(made["retroactive"], core="retroactive")
    return made


def test_version_is_a_string_in_every_package():
    for package in (agents, envs, plastic_core):
        assert isinstance(package.__version__, str) and package.__version__
    assert agents.__version__ == envs.__version__ == plastic_core.__version__


def test_run_json_records_the_provenance(runs):
    info = json.loads((runs["modulated"] / RUN_FILE).read_text())
    assert RUN_KEYS <= set(info)
    assert info["version"] == agents.__version__
    assert info["python"] == platform.python_version() and info["torch"] == torch.__version__
    assert info["numpy"] == np.__version__ and isinstance(info["gymnasium"], str)
    assert info["kernel"] in ("native", "eager")  # a modulated core runs on the fused kernels
    assert isinstance(info["threads"], int) and info["threads"] >= 1
    assert info["device"] == "cpu" and info["hostname"] and info["platform"]
    assert info["cpu"] is None or isinstance(info["cpu"], str)
    if info["git"] is not None:  # running from a checkout
        assert len(info["git"]["commit"]) == 40 and info["git"]["dirty"] in (True, False, None)
    assert info["resumed"] is False and info["start_iteration"] == 0
    assert len(info["sessions"]) == 1 and info["sessions"][0]["started"] == info["started"]
    assert json.loads((runs["rnn"] / RUN_FILE).read_text())["kernel"] is None  # no fused plastic core


def test_run_json_is_updated_on_resume(tmp_path):
    out = tmp_path / "r"
    tiny_run(out)
    first = json.loads((out / RUN_FILE).read_text())
    tiny_run(out, "--resume", episodes=24)
    info = json.loads((out / RUN_FILE).read_text())
    assert info["resumed"] is True and info["start_iteration"] == 4
    assert [s["resumed"] for s in info["sessions"]] == [False, True]
    assert info["sessions"][0] == first["sessions"][0]
    assert len(read_metrics(out)) == 6


def test_provenance_helpers(tmp_path):
    info = provenance(None, "cpu")
    assert info["kernel"] is None and info["threads"] == torch.get_num_threads()
    assert git_info(tmp_path) is None  # not a checkout
    model = plastic_core.make_core("plastic", 3, 4)
    assert kernel_path(model) in ("native", "eager")
    assert kernel_path(plastic_core.make_core("lstm", 3, 4)) is None
    (tmp_path / RUN_FILE).write_text("{not json")  # a damaged run.json starts the session list again
    written = write_run_json(tmp_path, info, resumed=True, start_iteration=3)
    assert written["start_iteration"] == 3 and len(written["sessions"]) == 1
    assert json.loads((tmp_path / RUN_FILE).read_text()) == written


def test_metrics_have_plasticity_columns_for_plastic_cores_only(runs):
    modulated = read_metrics(runs["modulated"])
    assert len(modulated) == 4
    for row in modulated:
        assert {"hebb_abs", "modulation_abs", "alpha_abs"} <= set(row) and "eta" not in row
        assert all(math.isfinite(row[key]) for key in ("hebb_abs", "modulation_abs", "alpha_abs"))
        assert 0 < row["hebb_abs"] <= 1.0 and 0 < row["modulation_abs"] <= 1.0  # clip 1, M = tanh(...)
    retroactive = read_metrics(runs["retroactive"])
    assert all(math.isfinite(row[key]) for row in retroactive for key in PLASTIC_COLUMNS)
    assert retroactive[0]["eta"] == pytest.approx(0.1, abs=0.01)  # eta_init, read before the first update
    rnn = read_metrics(runs["rnn"])
    assert not set(PLASTIC_COLUMNS) & set(rnn[0]) and "eval_reward" not in rnn[0]


def test_eval_every_logs_eval_reward_and_leaves_training_unchanged(runs):
    with_eval, without = read_metrics(runs["eval"]), read_metrics(runs["modulated"])
    assert [math.isnan(row["eval_reward"]) for row in with_eval] == [True, False, True, False]
    assert all(math.isfinite(row["eval_reward"]) for row in with_eval[1::2])
    assert json.loads((runs["eval"] / "config.json").read_text())["eval_every"] == 2
    assert json.loads((runs["modulated"] / "config.json").read_text())["eval_every"] == 0
    for a, b in zip(with_eval, without, strict=True):
        assert set(a) - set(b) == {"eval_reward"}
        assert {k: v for k, v in a.items() if k not in ("eval_reward", "wall_time")} == \
            {k: v for k, v in b.items() if k != "wall_time"}
    with open(runs["eval"] / "metrics.csv", newline="") as f:
        cells = [row["eval_reward"] for row in csv.DictReader(f)]
    assert cells[0] == cells[2] == ""  # blank, not "nan"


def test_old_runs_resume_with_new_columns(tmp_path):
    """A run from before --eval-every and the plasticity columns (no such config field, fewer columns) resumes;
    the header is extended and the earlier rows keep those cells blank."""
    out = tmp_path / "old"
    tiny_run(out)
    config = json.loads((out / "config.json").read_text())
    del config["eval_every"]
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    keep = [k for k in rows[0] if k not in PLASTIC_COLUMNS]
    with open(out / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, keep, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    # ... and its checkpoint from before the metrics record (a new checkpoint would refuse the edited rows)
    from agents.checkpoint import load_checkpoint, save_checkpoint

    payload = load_checkpoint(out / "checkpoint.pt")
    del payload["metrics"], payload["arithmetic"]
    save_checkpoint(out / "checkpoint.pt", payload)
    tiny_run(out, "--resume", "--eval-every", "1", episodes=24)
    logged = read_metrics(out)
    assert [row["iteration"] for row in logged] == [1, 2, 3, 4, 5, 6]
    assert all(math.isnan(row["hebb_abs"]) and math.isnan(row["eval_reward"]) for row in logged[:4])
    assert all(math.isfinite(row["hebb_abs"]) and math.isfinite(row["eval_reward"]) for row in logged[4:])
    assert json.loads((out / "config.json").read_text())["eval_every"] == 1


def test_metrics_log_blank_cells(tmp_path):
    with MetricsLog(tmp_path, tensorboard=False) as log:
        log.write({"iteration": 1, "episodes": 2, "a": 1.5, "b": None})
        log.write({"iteration": 2, "episodes": 4, "a": math.nan, "b": 2.0})
        log.write({"iteration": 3, "episodes": 6, "b": 3.0, "c": 7.0})  # a missing, c new
    rows = read_metrics(tmp_path)
    assert list(rows[0]) == ["iteration", "episodes", "a", "b", "c"]
    assert rows[0]["a"] == 1.5 and math.isnan(rows[0]["b"]) and math.isnan(rows[1]["a"])
    assert math.isnan(rows[2]["a"]) and rows[2]["c"] == 7.0 and math.isnan(rows[0]["c"])
    with MetricsLog(tmp_path, keep_rows=2, tensorboard=False) as log:  # resume truncates, keeps the header
        log.write({"iteration": 3, "episodes": 6, "a": 3.0, "b": 3.0, "c": 1.0})
    assert [r["iteration"] for r in read_metrics(tmp_path)] == [1, 2, 3] and read_metrics(tmp_path)[2]["c"] == 1.0


def test_tensorboard_has_hparams_and_the_new_scalars(runs):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    tb = runs["eval"] / "tb"
    assert [p for p in tb.iterdir() if p.is_dir()] == []  # hparams live in the run's own folder
    events = EventAccumulator(str(tb))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/eval_reward", "train/hebb_abs", "train/modulation_abs", "train/alpha_abs",
            "train/reward_mean"} <= scalars
    assert [e.step for e in events.Scalars("train/eval_reward")] == [8, 16]  # only the evaluated iterations
    assert all(math.isfinite(e.value) for e in events.Scalars("train/hebb_abs"))
    content = events.PluginTagToContent("hparams")
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(content)

    def plugin_data(tag: str) -> plugin_data_pb2.HParamsPluginData:
        data = plugin_data_pb2.HParamsPluginData()
        data.ParseFromString(content[tag])
        return data

    hparams = plugin_data("_hparams_/session_start_info").session_start_info.hparams
    assert hparams["core"].string_value == "modulated" and hparams["eval_every"].number_value == 2
    assert hparams["hidden"].number_value == 8 and json.loads(hparams["env_kwargs"].string_value) == {}
    metrics = {m.name.tag for m in plugin_data("_hparams_/experiment").experiment.metric_infos}
    assert {"train/reward_mean", "train/eval_reward"} <= metrics


def test_supervised_runs_get_run_json_and_hparams(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "completion"
    assert train.main(["--env", "Plastic/PatternCompletion-v0", "--episodes", "64", "--out", str(out),
                       "--no-progress"]) == 0
    info = json.loads((out / RUN_FILE).read_text())
    assert RUN_KEYS <= set(info) and info["kernel"] in ("native", "eager", None)
    assert train.main(["--out", str(out), "--resume", "--episodes", "96", "--no-progress"]) == 0
    info = json.loads((out / RUN_FILE).read_text())
    assert info["resumed"] is True and info["start_iteration"] == 2 and len(info["sessions"]) == 2
    events = EventAccumulator(str(out / "tb"))
    events.Reload()
    assert "_hparams_/session_start_info" in events.PluginTagToContent("hparams")
    assert train.main(["--env", "Plastic/PatternCompletion-v0", "--episodes", "64", "--out", str(tmp_path / "x"),
                       "--eval-every", "2"]) == 2  # an A2C-only option
