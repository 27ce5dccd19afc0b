"""Supervised meta-trainer: the 2016 tasks really learn, models fit every env, resume, NaN stop, clear errors."""

from __future__ import annotations

import csv
import importlib
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from cases.supervised import SMALL  # small versions of every task, keyed by registered id

from agents.logger import read_metrics
from agents.run import NonFiniteLossError, RunDir, train_loop
from agents.supervised import (
    RESUMABLE_FIELDS,
    SupervisedConfig,
    SupervisedTrainer,
    episode_tensors,
    evaluate,
    load_supervised_model,
    make_supervised_config,
    make_supervised_env,
    train_supervised,
)
from agents.supervised_models import OnlineSGDNetwork, build_model, default_model, model_names
from envs.supervised.losses import torch_step_loss

ROOT = Path(__file__).resolve().parents[2]
COMPLETION = "Plastic/PatternCompletion-v0"
ONE_SHOT = "Plastic/OneShotAssociation-v0"
REVERSAL = "Plastic/ReversalAssociation-v0"

PLASTICITY_NAMES = ("alpha", "eta", "rates", "feedback", "log_lrs")


def load_script(name: str):
    return importlib.import_module(f"agents.cli.{name}")


def trained(env_id: str, episodes: int, **overrides) -> SupervisedTrainer:
    trainer = SupervisedTrainer(make_supervised_config(env_id, None, episodes, **overrides))
    for iteration in range(trainer.config.iterations):
        trainer.train_iteration(iteration)
    return trainer


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# -- the 2016 tasks learn -----------------------------------------------------------------------------------------
def test_pattern_completion_learns_to_near_zero_error():
    trainer = trained(COMPLETION, 32 * 300, seed=0)
    before = evaluate(SupervisedTrainer(trainer.config), 256)  # same config, untrained weights
    after = evaluate(trainer, 256)
    assert before["loss"] > 6.0  # about 8 (all bits wrong half the time)
    assert after["loss"] < 0.5 and after["loss_hi"] < 0.5  # calibrated: ~0.13 for seeds 0-3
    assert after["bit_error"] == 0.0
    assert after["loss_lo"] <= after["loss"] <= after["loss_hi"]


def test_one_shot_association_learns_from_one_showing():
    trainer = trained(ONE_SHOT, 32 * 600, seed=1)
    result = evaluate(trainer, 256)
    assert result["loss"] < 0.2  # chance: log 2 = 0.693; calibrated 0.03-0.07 for seeds 0-3
    assert result["accuracy"] > 0.95


def test_pattern_memorisation_network_recalls_the_missing_half():
    """The 2018 network (50 bits instead of 1000): recall comes from the Hebbian trace of the episode."""
    trainer = trained("Plastic/PatternMemory-v0", 8 * 200, seed=0, env_kwargs={"pattern_size": 50})
    result = evaluate(trainer, 200)
    assert result["bit_error"] < 0.1  # half the bits are given; guessing the rest gives 0.25; calibrated ~0.045
    with torch.no_grad():
        trainer.model.core.alpha.zero_()
    assert evaluate(trainer, 200)["bit_error"] > 0.2  # without plasticity the missing half is a guess


def test_evaluation_freezes_weights_but_not_plasticity():
    trainer = trained(COMPLETION, 32 * 150, seed=2)
    weights = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    first, second = evaluate(trainer, 64, seed=3), evaluate(trainer, 64, seed=3)
    assert first == second  # same episodes, unchanged weights
    assert all(torch.equal(weights[k], v) for k, v in trainer.model.state_dict().items())
    assert trainer.model.training
    # without the Hebbian trace the same weights cannot complete the pattern
    with torch.no_grad():
        trainer.model.plastic.alpha.zero_()
    assert evaluate(trainer, 64, seed=3)["loss"] > 10 * first["loss"]


def test_nonnegative_alpha_projection():
    trainer = trained(REVERSAL, 32 * 20, model_kwargs={"nonnegative_alpha": True})
    assert trainer.model.plastic.alpha.min().item() >= 0.0
    assert trainer.model.plastic.alpha.max().item() > 0.0


# -- every model on every env ---------------------------------------------------------------------------------------
CASES = [(env_id, name) for env_id, kwargs in SMALL.items()
         for name in model_names(make_supervised_env(env_id, 1, kwargs).task)]


@pytest.mark.parametrize(("env_id", "name"), CASES, ids=[f"{e.split('/')[1]}-{n}" for e, n in CASES])
def test_model_maps_episodes_to_outputs_and_gradient_reaches_plasticity(env_id, name):
    env = make_supervised_env(env_id, 3, SMALL[env_id])
    inputs, targets, mask = episode_tensors(env.sample_episodes(0), torch.device("cpu"))
    torch.manual_seed(0)
    model = build_model(name, env.task)
    outputs = model(inputs)
    assert outputs.shape == (env.episode_length, 3, env.output_dim)
    assert torch.isfinite(outputs).all()
    loss = (torch_step_loss(outputs, targets, env.loss) * mask).sum() / mask.sum()
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values()), name
    plastic = {n: g for n, g in grads.items() if any(word in n for word in PLASTICITY_NAMES)}
    if name not in ("rnn", "lstm"):
        assert plastic, f"{name} has no plasticity parameters"
    for param_name, grad in plastic.items():
        assert grad.abs().sum() > 0, f"no gradient reaches {param_name}"
    # episodes are independent: episode 0 alone gives the same outputs
    assert torch.allclose(model(inputs[:, :1]), outputs[:, :1], atol=1e-5)


def test_default_models():
    assert default_model(make_supervised_env(COMPLETION, 1).task) == "plastic"
    assert default_model(make_supervised_env("Plastic/ContinualSine-v0", 1).task) == "flp"
    model = build_model("plastic", make_supervised_env("Plastic/PatternMemory-v0", 1, {"pattern_size": 20}).task)
    assert sum(p.numel() for p in model.parameters()) == 2 * 21**2 + 1  # w, alpha, eta (paper: 2,004,003 at 1000)
    assert (model.core.w == 0).all() and (model.core.alpha != 0).all()  # recall is the Hebbian term's job
    memory = make_supervised_env("Plastic/PatternMemory-v0", 1, {"pattern_size": 20}).task
    w = build_model("plastic", memory, w_init=0.5).core.w
    assert w.abs().max() <= 0.5 and w.std() > 0.2  # U(-0.5, 0.5) when asked
    images_id = "Plastic/ImageReconstruction-v0"
    images = build_model("plastic", make_supervised_env(images_id, 1, SMALL[images_id]).task)
    assert (images.core.w != 0).all()  # the image network keeps nn.RNN's initialisation
    for bad in (-0.1, float("nan"), "0"):
        with pytest.raises(ValueError, match="w_init"):
            build_model("plastic", memory, w_init=bad)


@pytest.mark.parametrize("loss", ["squared_error", "cross_entropy"])
def test_online_sgd_baseline_takes_exact_sgd_steps(loss):
    torch.manual_seed(0)
    net = OnlineSGDNetwork([3, 6, 4, 2], loss, lr_init=0.05)
    x, y = torch.randn(2, 3), torch.eye(2)[[0, 1]]
    y_hat, new_state = net.step(x, y, net.initial_state(2))
    for b in range(2):  # reference: autograd on episode b alone
        params = [p.detach().clone().requires_grad_() for pair in zip(net.initial_weights, net.initial_biases,
                                                                        strict=True) for p in pair]
        a = x[b]
        for layer in range(3):
            a = params[2 * layer] @ a + params[2 * layer + 1]
            a = torch.relu(a) if layer < 2 else a
        assert torch.allclose(a, y_hat[b], atol=1e-6)
        torch_step_loss(a, y[b], loss).backward()
        for layer in range(3):
            stepped = params[2 * layer] - 0.05 * params[2 * layer].grad
            assert torch.allclose(new_state[f"weight_{layer}"][b], stepped, atol=1e-6)
            stepped_bias = params[2 * layer + 1] - 0.05 * params[2 * layer + 1].grad
            assert torch.allclose(new_state[f"bias_{layer}"][b], stepped_bias, atol=1e-6)


# -- run directories: resume, NaN ------------------------------------------------------------------------------------
def tiny_config(**overrides) -> SupervisedConfig:
    settings = dict(episodes=8 * 12, batch=8, checkpoint_every=4)
    settings.update(overrides)
    return make_supervised_config(ONE_SHOT, settings.pop("model", "plastic"), **settings)


class InterruptedTrainer(SupervisedTrainer):
    """Dies (like a killed process) before iteration ``die_at``, after the metrics of earlier ones were logged."""

    die_at = 10

    def train_iteration(self, iteration):
        if iteration == self.die_at:
            raise KeyboardInterrupt
        return super().train_iteration(iteration)


def test_interrupted_and_resumed_run_equals_uninterrupted_run(tmp_path):
    config = tiny_config()
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    train_supervised(config, whole, progress=False, tensorboard=False)
    run = RunDir.create(broken, config.to_dict(), RESUMABLE_FIELDS)
    with pytest.raises(KeyboardInterrupt):
        train_loop(run, InterruptedTrainer(config), config.iterations, config.checkpoint_every, progress=False,
                   tensorboard=False)
    assert len(read_metrics(broken)) == 10  # rows 9 and 10 come after the last checkpoint (8)
    rows = train_supervised(config, broken, resume=True, progress=False, tensorboard=False)
    assert [row["iteration"] for row in rows] == [9, 10, 11, 12]
    a, b = csv_rows(broken / "metrics.csv"), csv_rows(whole / "metrics.csv")
    for row in a + b:
        row.pop("wall_time")
    assert a == b
    model_a, _ = load_supervised_model(broken)
    model_b, _ = load_supervised_model(whole)
    for (name, pa), pb in zip(model_a.state_dict().items(), model_b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name


def test_killed_script_resumes_to_the_uninterrupted_metrics(tmp_path):
    args = ["--env", COMPLETION, "--episodes", str(16 * 1000), "--batch", "16", "--seed", "4",
            "--checkpoint-every", "20", "--no-progress", "--no-tensorboard"]
    script = "agents.cli.train_supervised"
    killed, whole = tmp_path / "killed", tmp_path / "whole"

    def start(extra):
        return subprocess.Popen([sys.executable, "-m", script, *extra], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    proc = start([*args, "--out", str(killed)])
    deadline = time.monotonic() + 60
    while not (killed / "checkpoint.pt").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint within 60 s"
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    logged = len(csv_rows(killed / "metrics.csv"))
    assert 20 <= logged < 1000, "the run must be killed part-way for this test to mean anything"
    resumed, uninterrupted = start(["--out", str(killed), "--resume", "--no-progress"]), start([*args, "--out",
                                                                                               str(whole)])
    for p in (resumed, uninterrupted):
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    a, b = csv_rows(killed / "metrics.csv"), csv_rows(whole / "metrics.csv")
    assert len(b) == 1000
    for row in a + b:
        row.pop("wall_time")
    assert a == b


class PoisonedTrainer(SupervisedTrainer):
    """Sets the plastic layer's weights to NaN before iteration ``poison_at`` (0-based)."""

    poison_at = 5

    def train_iteration(self, iteration):
        if iteration == self.poison_at:
            with torch.no_grad():
                self.model.plastic.w.fill_(math.nan)
        return super().train_iteration(iteration)


def test_nan_loss_stops_before_updating_and_keeps_the_last_good_checkpoint(tmp_path):
    config = tiny_config()
    run = RunDir.create(tmp_path / "run", config.to_dict(), RESUMABLE_FIELDS)
    trainer = PoisonedTrainer(config)
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at iteration 6 .*last good checkpoint .*iteration 4"):
        train_loop(run, trainer, config.iterations, config.checkpoint_every, progress=False, tensorboard=False)
    state = trainer.optimizer.state_dict()["state"]
    assert all(s["step"].item() == 5 for s in state.values())  # the NaN iteration did not step Adam
    assert all(torch.isfinite(p).all() for n, p in trainer.model.named_parameters() if n != "plastic.w")
    payload = run.load_checkpoint()
    assert payload["iteration"] == 4
    assert all(torch.isfinite(t).all() for t in payload["trainer"]["model"].values())
    assert [row["iteration"] for row in read_metrics(run.path)] == [1, 2, 3, 4, 5]


# -- scripts --------------------------------------------------------------------------------------------------------
def test_train_script_writes_a_run_and_resumes_it(tmp_path, capsys):
    script = load_script("train_supervised")
    out = tmp_path / "run"
    assert script.main(["--env", REVERSAL, "--episodes", "64", "--batch", "16", "--model-kwargs",
                        '{"nonnegative_alpha": true}', "--no-progress", "--eval-episodes", "32",
                        "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "64 episodes" in printed and "evaluation on 32 test episodes" in printed and "accuracy" in printed
    assert {p.name for p in out.iterdir()} >= {"config.json", "metrics.csv", "tb", "checkpoint.pt", "run.lock"}
    config = json.loads((out / "config.json").read_text())
    assert config["algo"] == "supervised" and config["model"] == "plastic" and config["lr"] == 0.1
    assert config["model_kwargs"] == {"nonnegative_alpha": True}
    assert {"loss", "reward_mean", "accuracy", "grad_norm", "wall_time"} <= set(read_metrics(out)[0])
    assert script.main(["--out", str(out), "--resume", "--episodes", "96", "--no-progress"]) == 0
    assert [r["iteration"] for r in read_metrics(out)] == [1, 2, 3, 4, 5, 6]
    assert script.main(["--out", str(out), "--resume", "--lr", "0.5", "--no-progress"]) == 2
    assert "cannot resume" in capsys.readouterr().err


def test_reproduce_script_prints_and_writes_a_table(tmp_path, capsys):
    script = load_script("reproduce_supervised")
    table = tmp_path / "table.md"
    assert script.main(["--tasks", "completion", "--seeds", "2", "--budget", "0.05", "--eval-episodes", "64",
                        "--out", str(table), "--runs", str(tmp_path / "runs")]) == 0
    comment, text = table.read_text().split("\n", 1)
    assert comment.startswith("<!-- plastic reproduce supervised --tasks completion")
    assert text in capsys.readouterr().out
    lines = [line for line in text.splitlines() if line.startswith("| pattern completion")]
    assert [line.split(" | ")[2] for line in lines] == ["loss", "bit_error"]
    assert all("±" in line and "| plastic |" in line and "| 1600 |" in line for line in lines)


def test_reproduce_script_reports_a_diverged_seed_and_keeps_the_others(tmp_path, capsys, monkeypatch):
    script = load_script("reproduce_supervised")
    from agents.sweep.runner import Outcome, execute

    def runner_with_seed_1_diverging(jobs, **kwargs):  # the sweep runner, in-process, seed 1 ending as a NaN does
        outcomes = []
        for job in jobs:
            if job.name.endswith("-s1"):
                outcomes.append(Outcome(job.name, "failed", 1, message="stopping: the loss is nan at iteration 3"))
            else:
                result = execute(job.spec())
                outcomes.append(Outcome(job.name, "done" if result["code"] == 0 else "failed", result["code"]))
        return outcomes

    monkeypatch.setattr(script, "run_jobs", runner_with_seed_1_diverging)
    assert script.main(["--tasks", "completion", "--seeds", "3", "--budget", "0.02", "--eval-episodes", "32",
                        "--runs", str(tmp_path / "runs")]) == 0
    captured = capsys.readouterr()
    assert "completion seed 1: diverged (stopping: the loss is nan" in captured.err
    loss_row = next(line for line in captured.out.splitlines() if "| loss |" in line)
    cells = loss_row.split(" | ")
    assert cells[3].endswith("(2 of 3 seeds)") and "nan" not in cells[3]
    assert cells[4].split(", ")[1] == "diverged"


def test_reproduce_script_skips_finished_runs(tmp_path, capsys, monkeypatch):
    script = load_script("reproduce_supervised")
    args = ["--tasks", "completion", "--seeds", "1", "--budget", "0.02", "--eval-episodes", "16",
            "--runs", str(tmp_path / "runs")]
    assert script.main(args) == 0
    started = []
    monkeypatch.setattr(script, "run_jobs", lambda jobs, **kwargs: started.extend(jobs) or [])
    assert script.main(args) == 0
    assert started == []  # the finished run is scored again, not trained again
    assert "| pattern completion |" in capsys.readouterr().out


def test_flp_learns_continual_sine_within_the_episode():
    """The default FLP sine model (fixed meta-learned representation, Hebbian head) learns 5 functions in sequence;
    with its plasticity rates zeroed the same network is far worse (it can only predict an average function)."""
    sine = {"n_functions": 5, "samples_per_function": 20, "queries_per_function": 10}
    trainer = trained("Plastic/ContinualSine-v0", 3200, env_kwargs=sine)
    loss = evaluate(trainer, 500, "test", seed=1)["loss"]
    with torch.no_grad():
        for rate in trainer.model.learner.rates:
            rate.zero_()
    frozen = evaluate(trainer, 500, "test", seed=1)["loss"]
    assert loss < 2.5  # predicting 0 scores ~4.4
    assert frozen > loss + 1.0


def test_one_shot_with_nonnegative_alpha_fails_only_on_near_identical_patterns():
    """Positive Hebbian feedback confuses two patterns that share most bits; distinct pairs are learned."""
    script = load_script("reproduce_supervised")
    trainer = trained(ONE_SHOT, 6400, seed=1, lr=0.01, model_kwargs={"nonnegative_alpha": True})
    losses = script.one_shot_by_distance(trainer.model, episodes=2000)
    near, far = losses["loss, patterns 1-2 bits apart"], losses["loss, patterns ≥ 3 bits apart"]
    assert far < 0.15  # learned (chance: ln 2 = 0.69)
    assert near > 4 * far


# -- bad input ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("env_id", "model", "overrides", "error", "match"), [
    (COMPLETION, "transformer", {}, ValueError, r"unknown model 'transformer'; models for PatternCompletion: plastic"),
    (COMPLETION, "flp", {}, ValueError, r"model 'flp' does not fit the PatternCompletion task"),
    ("Plastic/ContinualSine-v0", "plastic", {}, ValueError, r"does not fit the ContinualSine task.*flp"),
    (COMPLETION, "plastic", {"model_kwargs": {"gama": 0.5}}, ValueError, r"bad model kwargs .*gama"),
    (COMPLETION, "plastic", {"env_kwargs": {"bits": 8}}, ValueError, r"bad env kwargs .*bits"),
    ("Plastic/Maze-v0", "plastic", {}, ValueError, r"not a supervised env .*scripts/train.py"),
    ("Plastic/Nope-v0", "plastic", {}, ValueError, r"unknown or unsupported env id"),
    (COMPLETION, "plastic", {"data": "/tmp/x"}, ValueError, r"--data is used only by"),
    ("Plastic/OmniglotOneShot-v0", "plastic", {"data": "/nonexistent/omniglot"}, FileNotFoundError,
     r"Omniglot data not found: /nonexistent/omniglot"),
    ("Plastic/OmniglotOneShot-v0", "plastic", {"env_kwargs": {"n_shots": 0}}, ValueError, r"n_shots must be >= 1"),
    ("Plastic/OmniglotOneShot-v0", "plastic", {"env_kwargs": {"n_way": 5000}}, ValueError,
     r"n_way=5000 is larger than the \d+ classes"),
    ("Plastic/ContinualOmniglot-v0", "flp", {"env_kwargs": {"n_shots": 0}}, ValueError, r"n_shots must be >= 1"),
])
def test_bad_input_gives_a_clear_error(env_id, model, overrides, error, match):
    with pytest.raises(error, match=match):
        SupervisedTrainer(SupervisedConfig(env_id=env_id, model=model, episodes=8, batch=2, **overrides))


def test_bad_settings_and_script_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match="batch must be a positive integer"):
        SupervisedConfig(env_id=COMPLETION, model="plastic", episodes=8, batch=0)
    with pytest.raises(ValueError, match="lr must be a finite positive number"):
        SupervisedConfig(env_id=COMPLETION, model="plastic", episodes=8, lr=float("nan"))
    with pytest.raises(ValueError, match="needs the run's config"):
        evaluate(torch.nn.Linear(2, 2), 4)
    script = load_script("train_supervised")
    assert script.main(["--env", "Plastic/OmniglotOneShot-v0", "--episodes", "4", "--data",
                        str(tmp_path / "missing"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "Omniglot data not found" in err and "--data" in err
    assert not (tmp_path / "run").exists()  # nothing written for a run that cannot start
    assert script.main(["--out", str(tmp_path / "run2")]) == 2
    assert "a new run needs --env, --episodes" in capsys.readouterr().err


def test_evaluate_uses_the_held_out_split():
    config = make_supervised_config("Plastic/OmniglotOneShot-v0", "plastic", 8, batch=4,
                                    env_kwargs={"n_way": 3, "n_test_classes": 20})
    trainer = SupervisedTrainer(config)
    test, train = evaluate(trainer, 8, "test"), evaluate(trainer, 8, "train")
    assert test != train
    assert 0.0 <= test["accuracy"] <= 1.0 and np.isfinite(test["loss"])
    with pytest.raises(ValueError, match="split must be"):
        evaluate(trainer, 8, "validation")
