"""MkDocs hooks: the pages that come from the package itself, generated at every build.

* ``index.md`` is README.md (one front page for GitHub and the site; its links into docs/ made site-relative).
* ``environments/<name>.md``, one page per registered env: its module docstring (Description, Observation,
  Actions, ...), its metadata and spaces, and its rendered frame (docs/<name>.png, written by ``plastic frames``);
  the pages are added to the nav under "Environments".
* ``results/``: the result files of the repository (tables and figures), so that pages can link them.
* ``<!-- plastic verbs -->`` on a page becomes the table of ``plastic`` verbs (agents/cli/plastic.py).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import gymnasium as gym
from mkdocs.structure.files import File, Files, InclusionLevel

import envs
from agents.cli.plastic import LEGACY, VERBS
from agents.cli.render_env_frames import frame_name

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
VERBS_MARKER = "<!-- plastic verbs -->"


def front_page() -> str:
    """README.md with its links into docs/ made relative to the site's root."""
    return re.sub(r"\]\(docs/", "](", (ROOT / "README.md").read_text())


def env_page_path(env_id: str) -> str:
    return f"environments/{frame_name(env_id)}.md"


def space_text(space: gym.Space) -> str:
    """A space in a few characters: ``Box((17,), float32)`` rather than its every bound."""
    if isinstance(space, gym.spaces.Box):
        return f"Box({space.shape}, {space.dtype})"
    return str(space)


def env_page(env_id: str) -> str:
    """The page of one env: title, summary, metadata table, frames, then the rest of its module docstring."""
    module_name = gym.spec(env_id).entry_point.split(":")[0]
    doc = importlib.import_module(module_name).__doc__ or ""
    summary, _, body = doc.strip().partition("\n\n")
    body = re.sub(r":(?:class|func|meth|mod):`~?([^`]+)`", r"``\1``", body)
    env = gym.make(env_id)
    metadata = env.unwrapped.metadata
    rows = [
        ("id", f"`{env_id}`"),
        ("module", f"`{module_name}` (`help({module_name})`)"),
        ("observation space", f"`{space_text(env.observation_space)}`"),
        ("action space", f"`{space_text(env.action_space)}`"),
        ("paper", metadata.get("paper", "")),
        ("tags", ", ".join(f"`{tag}`" for tag in metadata.get("tags", []))),
        ("render modes", ", ".join(metadata.get("render_modes", [])) or "none"),
    ]
    env.close()
    lines = [f"# {env_id}", "", " ".join(summary.split()), "", "| property | value |", "| --- | --- |"]
    lines += [f"| {key} | {value} |" for key, value in rows]
    stem = frame_name(env_id)
    frames = sorted(DOCS.glob(f"{stem}.png")) + sorted(DOCS.glob(f"{stem}_*.png"))
    if frames:
        lines += ["", " ".join(f"![{path.stem.replace('_', ' ')}](../{path.name})" for path in frames)]
        lines += ["", "*Drawn by the env's `rgb_array` render (`plastic frames --out-dir docs` draws them again).*"]
    lines += ["", f"```python\nimport gymnasium as gym\nimport envs\n\nenv = gym.make({env_id!r})\n"
                  "obs, info = env.reset(seed=0)\nobs, reward, terminated, truncated, info = "
                  "env.step(env.action_space.sample())\n```"]
    return "\n".join(lines + ["", body.strip(), ""])


def on_config(config):
    for item in config["nav"] or []:
        if isinstance(item, dict) and isinstance(item.get("Environments"), list):
            item["Environments"] += [{env_id.split("/")[1]: env_page_path(env_id)} for env_id in envs.ENV_IDS]
    return config


def on_files(files: Files, config) -> Files:
    files.append(File.generated(config, "index.md", content=front_page()))
    for env_id in envs.ENV_IDS:
        files.append(File.generated(config, env_page_path(env_id), content=env_page(env_id)))
    for path in sorted((ROOT / "results").rglob("*")):
        if path.suffix in (".md", ".png"):
            name = path.relative_to(ROOT / "results").as_posix()
            files.append(File.generated(config, f"results/{name}", abs_src_path=str(path),
                                        inclusion=InclusionLevel.NOT_IN_NAV))  # linked from the pages
    return files


def verbs_table() -> str:
    lines = ["| command | what it does | old command (deprecated alias) |", "| --- | --- | --- |"]
    old = {verb: name for name, verb in LEGACY.items()}
    lines += [f"| `plastic {name}` | {verb.summary} | `{old.get(name, '')}` |".replace("| `` |", "| |")
              for name, verb in VERBS.items()]
    return "\n".join(lines)


def on_page_markdown(markdown: str, page, config, files) -> str:
    return markdown.replace(VERBS_MARKER, verbs_table())
