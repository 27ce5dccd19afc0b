"""Every console script of pyproject.toml points at a ``main`` that runs, and each has a scripts/ wrapper."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def command_module(command: str) -> str:
    """The module of a console script's command: agents.cli.launch:NAME runs agents.cli.NAME's main."""
    module_name, _, function = SCRIPTS[command].partition(":")
    return f"agents.cli.{function}" if module_name == "agents.cli.launch" else module_name


@pytest.mark.parametrize("command", sorted(SCRIPTS))
def test_console_script_main_prints_its_help(command, capsys):
    module_name, _, function = SCRIPTS[command].partition(":")
    main = getattr(importlib.import_module(module_name), function)
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith("usage:")


@pytest.mark.parametrize("command", sorted(SCRIPTS))
def test_every_console_script_has_a_checkout_wrapper(command):
    module_name = command_module(command)
    wrappers = [p for p in (ROOT / "scripts").glob("*.py") if f"from {module_name} import main" in p.read_text()]
    assert len(wrappers) == 1, f"{command}: no scripts/*.py wrapper imports {module_name}"
    assert "sys.path" not in wrappers[0].read_text()


def test_installed_console_script_runs_from_another_directory(tmp_path):
    plastic_train = Path(sys.executable).with_name("plastic-train")
    if not plastic_train.exists():
        pytest.skip("the package is not installed in this environment (pip install -e .)")
    done = subprocess.run([str(plastic_train), "--list-presets"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "backpropamine2019-maze" in done.stdout


@pytest.mark.parametrize("command", sorted(SCRIPTS))
def test_every_console_script_goes_through_the_launcher(command):
    """The launcher runs before torch is imported: an early Ctrl-C gives one line (see test_sweep_safety.py)."""
    assert SCRIPTS[command].startswith("agents.cli.launch:")
    assert importlib.import_module(command_module(command)).main
