"""A namesake ``envs`` (a local folder, another distribution) gives an error that says so, not NamespaceNotFound."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agents.package_check import check_sibling_package, found_at

OURS = Path(__file__).resolve().parents[2]


def fake_envs(folder: Path) -> Path:
    (folder / "envs").mkdir()
    (folder / "envs" / "__init__.py").write_text("SOMEONE_ELSES = True\n")
    return folder / "envs"


def test_our_packages_pass_the_check():
    check_sibling_package("envs")
    assert found_at("envs") == found_at("agents").parent / "envs"


@pytest.mark.parametrize("command", [
    ["-c", "import agents"],
    ["-m", "agents.cli.train", "--help"],
])
def test_a_local_envs_folder_is_named_with_the_fix(tmp_path, command):
    shadow = fake_envs(tmp_path)
    done = subprocess.run([sys.executable, *command], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: `import envs` resolves to " + str(shadow.resolve()))
    assert "not to plastic-meta-rl's 'envs' package" in last and "run from another directory" in last
    assert "NamespaceNotFound" not in done.stderr


def test_gym_make_with_module_prefix_still_works(tmp_path):
    script = "import gymnasium as gym; env = gym.make('envs:Plastic/Maze-v0'); print(env.observation_space.shape)"
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(17,)"
