"""`plastic <verb>` runs every tool; the old console scripts are aliases of its verbs; each tool has a scripts/
wrapper."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from agents.cli import plastic

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


@pytest.mark.parametrize("verb", sorted(plastic.VERBS))
def test_every_verb_prints_its_own_help(verb, capsys):
    with pytest.raises(SystemExit) as stop:
        plastic.main([*verb.split(), "--help"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: plastic {verb} ")


def test_plastic_help_lists_every_verb_on_one_line(capsys):
    assert plastic.main(["--help"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for verb in plastic.VERBS:
        listed = [line for line in lines if line.strip().split("  ")[0] == verb]
        assert len(listed) == 1, verb


def test_a_verb_group_or_an_unknown_verb_is_one_line_error(capsys):
    assert plastic.main(["bench"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "core, envs, sb3, threads, trainer" in err
    assert plastic.main(["trian"]) == 2
    assert "unknown verb 'trian'" in capsys.readouterr().err


def test_a_verb_passes_its_arguments_and_exit_status(capsys):
    with pytest.raises(SystemExit) as stop:
        plastic.main(["train", "--list-presets"])
    assert stop.value.code == 0 and "backpropamine2019-maze" in capsys.readouterr().out
    assert plastic.main(["train", "--out", "x", "--resume", "--preset", "maze"]) == 2  # a train error, exit 2


def test_console_scripts_are_plastic_and_the_legacy_aliases():
    assert SCRIPTS.pop("plastic") == "agents.cli.plastic:main"
    assert set(SCRIPTS) == set(plastic.LEGACY)
    assert set(SCRIPTS.values()) == {"agents.cli.plastic:legacy_main"}
    assert set(plastic.LEGACY.values()) <= set(plastic.VERBS)


def test_a_legacy_alias_says_it_is_deprecated_then_runs(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["/venv/bin/plastic-benchmark-envs", "--steps", "0"])
    with pytest.raises(SystemExit) as stop:  # the verb's own argument check ran
        plastic.legacy_main()
    assert stop.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "plastic-benchmark-envs is deprecated and will be removed in the next version: use " \
                     "`plastic bench envs`"
    assert err[-1].startswith("plastic bench envs: error: ")


@pytest.mark.parametrize("verb", sorted(plastic.VERBS))
def test_every_verb_has_a_checkout_wrapper(verb):
    module_name = f"agents.cli.{plastic.VERBS[verb].module}"
    importlib.import_module(module_name)
    wrappers = [p for p in (ROOT / "scripts").glob("*.py") if f"from {module_name} import main" in p.read_text()]
    assert len(wrappers) == 1, f"{verb}: no scripts/*.py wrapper imports {module_name}"
    assert "sys.path" not in wrappers[0].read_text()


@pytest.mark.parametrize("command", [["plastic", "train"], ["plastic-train"]])
def test_installed_command_runs_from_another_directory(command, tmp_path):
    executable = Path(sys.executable).with_name(command[0])
    if not executable.exists():
        pytest.skip("the package is not installed in this environment (pip install -e .)")
    done = subprocess.run([str(executable), *command[1:], "--list-presets"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "backpropamine2019-maze" in done.stdout


def test_python_dash_m_agents_is_plastic(tmp_path):
    done = subprocess.run([sys.executable, "-m", "agents", "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == plastic.usage() + "\n"
