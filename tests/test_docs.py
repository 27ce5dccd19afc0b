"""The documentation: the site builds with --strict, the pages' Python runs, their commands exist, and every
section of the former long README has a page."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import envs
from agents.cli import plastic

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md")) + [ROOT / "README.md"]
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.M | re.S)

# the sections of the README before the site (commit c42d79e) -> the page that holds each now
FORMER_SECTIONS = {
    "Quick start": "quickstart.md",
    "As an installed package": "install.md",
    "The package": "install.md",
    "Plastic cores": "cores.md",
    "Native kernels and threads": "cores.md",
    "Environments": "environments/index.md",
    "Training": "training.md",
    "Runs": "training.md",
    "Sweeps on Ray: many runs on this machine or a cluster": "sweeps.md",
    "Reliability: what is guaranteed (and tested)": "reliability.md",
    "Troubleshooting": "troubleshooting.md",
    "Results": "reproducing.md",
    "Speed": "performance.md",
    "Development": "development.md",
}


def load_hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def blocks(text: str, language: str) -> list[str]:
    return [code for lang, code in FENCE.findall(text) if lang == language]


def name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_site_builds_strictly_with_the_generated_pages(tmp_path):
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    maze = (site / "environments" / "maze" / "index.html").read_text()
    assert "Observation" in maze and "../../maze.png" in maze and "Discrete(4)" in maze
    assert len(list((site / "environments").glob("*/index.html"))) == len(envs.ENV_IDS)
    commands = (site / "commands" / "index.html").read_text()
    assert all(f"plastic {verb}" in commands for verb in plastic.VERBS)
    assert "plastic_core.make_core" in (site / "api" / "plastic_core" / "index.html").read_text()
    assert (site / "results" / "index.html").exists() and (site / "results" / "maze13.png").exists()


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p.read_text(), "python")], ids=name)
def test_the_python_blocks_of_a_page_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # what a block writes (runs/...) stays in a temporary folder
    namespace: dict = {"__name__": "__docs__"}
    for code in blocks(page.read_text(), "python"):
        exec(compile(code, str(page), "exec"), namespace)


@pytest.mark.parametrize("env_id", envs.ENV_IDS)
def test_the_generated_env_page_has_its_sections_and_its_example_runs(env_id):
    page = load_hooks().env_page(env_id)
    assert page.startswith(f"# {env_id}\n")
    for section in ("## Description", "## Observation", "## Actions", "## Rewards", "## Source paper"):
        assert section in page, section
    (code,) = blocks(page, "python")
    exec(compile(code, env_id, "exec"), {})


def test_the_commands_of_the_pages_are_verbs_of_plastic():
    for page in PAGES:
        for code in blocks(page.read_text(), "bash"):
            for line in code.splitlines():
                assert not re.match(r"\s*plastic-", line), f"{name(page)}: an old command name: {line}"
                words = line.split("#")[0].split()
                if words[:1] == ["plastic"] and len(words) > 1:
                    plastic.find_verb(words[1:])  # a ValueError names an unknown verb


def test_every_former_readme_section_has_a_page():
    for title, page in FORMER_SECTIONS.items():
        text = (DOCS / page).read_text()
        headings = [line.lstrip("#").strip() for line in text.splitlines() if line.startswith("#")]
        assert title in headings, f"{title!r} is not a heading of docs/{page}"


def test_the_readme_is_a_front_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme) < 10_000
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / link).exists(), link
