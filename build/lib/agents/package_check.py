"""Make sure ``import envs`` finds this distribution's ``envs``, not a namesake.

``envs`` and ``agents`` are common words: a popular package on the package index is called ``envs``, TF-Agents
installs ``agents``, and a researcher's own ``envs/`` folder in the working directory comes first on ``sys.path``
for ``python -m`` and ``python script.py``. Without this check the user sees gymnasium's ``NamespaceNotFound:
Namespace Plastic not found``, which points the wrong way.
"""

from __future__ import annotations

import importlib.util
import sys
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "plastic-meta-rl"
_HOME = Path(__file__).resolve().parent.parent  # the folder that holds our agents/, envs/ and plastic_core/


def found_at(name: str) -> Path | None:
    """The package directory (or module file) that ``import name`` gives now; None when nothing is found."""
    module = sys.modules.get(name)
    if module is not None:
        paths, file = list(getattr(module, "__path__", [])), getattr(module, "__file__", None)
    else:
        spec = importlib.util.find_spec(name)
        if spec is None:
            return None
        paths, file = list(spec.submodule_search_locations or []), spec.origin
    if paths:
        return Path(paths[0]).resolve()
    return Path(file).resolve() if file else None


def check_sibling_package(name: str) -> None:
    """``ImportError`` with the reason and the fix unless ``import name`` gives this distribution's package."""
    where = found_at(name)
    if where == _HOME / name:
        return
    if where is None:
        raise ImportError(f"{DISTRIBUTION}'s package {name!r} is missing next to {_HOME}; reinstall "
                          f"{DISTRIBUTION} (pip install --force-reinstall {DISTRIBUTION})")
    others = [dist for dist in metadata.packages_distributions().get(name, []) if dist != DISTRIBUTION]
    why = (f"the installed distribution(s) {', '.join(sorted(set(others)))} also provide {name!r}" if others
           else "a folder or module of that name comes first on sys.path (often the current directory)")
    raise ImportError(
        f"`import {name}` resolves to {where}, not to {DISTRIBUTION}'s {name!r} package ({_HOME / name}): {why}. "
        f"Rename or move that {name!r}, or run from another directory"
        + (f", or `pip uninstall {' '.join(sorted(set(others)))}`" if others else "") + "."
    )
