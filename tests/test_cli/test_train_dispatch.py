"""scripts/train.py hands supervised env ids to the supervised trainer and refuses flags of the other kind."""

import subprocess
import sys

import pytest

from agents.logger import read_metrics
from agents.run import RunDir


def train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agents.cli.train", "--no-progress", "--no-tensorboard", *args],
                          capture_output=True, text=True, timeout=120)


def test_supervised_env_trains_and_resumes_through_train_py(tmp_path):
    out = tmp_path / "completion"
    done = train("--env", "Plastic/PatternCompletion-v0", "--episodes", "640", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert RunDir.read_config(out)["algo"] == "supervised"
    assert len(read_metrics(out / "metrics.csv")) == 640 // 32
    resumed = train("--out", str(out), "--resume", "--episodes", "1280")
    assert resumed.returncode == 0, resumed.stderr
    rows = read_metrics(out / "metrics.csv")
    assert len(rows) == 1280 // 32
    assert rows[-1]["loss"] < rows[0]["loss"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "Plastic/PatternCompletion-v0", "--core", "rnn"], "--core apply to the RL envs only"),
        (["--env", "Plastic/ReversalBandit-v0", "--core", "rnn", "--model", "plastic"],
         "--model apply to the supervised tasks only"),
    ],
)
def test_flags_of_the_other_kind_are_refused(tmp_path, args, message):
    out = tmp_path / "run"
    done = train(*args, "--episodes", "64", "--out", str(out))
    assert done.returncode == 2
    assert message in done.stderr
    assert not out.exists()
