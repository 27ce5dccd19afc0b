"""plastic_core's modules import each other without a circle (anywhere in a module, functions and ``if
TYPE_CHECKING:`` blocks included), and every plastic core describes its rule with the one vocabulary of
``plastic_core.rules``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from cases.cores import PLASTIC, build

import plastic_core
from plastic_core.fused import rule_of
from plastic_core.rules import ALPHA_KINDS, RULE_KINDS, Rule

PACKAGE = Path(plastic_core.__file__).parent


def imports(path: Path) -> set[str]:
    """The plastic_core modules that ``path`` imports, anywhere."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("plastic_core"):
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            found.update(name if (PACKAGE / f"{name.split('.')[-1]}.py").exists() and node.module == "plastic_core"
                         else node.module for name in names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("plastic_core."))
    return {name for name in found if name != "plastic_core"}


def test_no_two_modules_import_each_other() -> None:
    graph = {f"plastic_core.{path.stem}": imports(path) for path in PACKAGE.glob("*.py")
             if path.stem != "__init__"}
    assert graph["plastic_core.plastic_rnn"] >= {"plastic_core.fused", "plastic_core.rules"}
    # the fused recurrence knows no core class: it reads a core's rule and parameters
    assert not graph["plastic_core.fused"] & {"plastic_core.plastic_rnn", "plastic_core.rnn"}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import circle: {' -> '.join((*path, module))}"
        if module in done:
            return
        for imported in graph.get(module, ()):
            visit(imported, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())


@pytest.mark.parametrize("name, opts", PLASTIC, ids=[f"{n}-{o}" for n, o in PLASTIC])
def test_every_plastic_core_describes_its_rule(name: str, opts: dict) -> None:
    core = build(name, opts)
    rule = rule_of(core)
    assert rule == core.plasticity_rule and rule.kind in RULE_KINDS and rule.alpha in ALPHA_KINDS
    assert rule.kind == (opts.get("rule") if name == "plastic" else name)
    assert rule.alpha == opts.get("alpha", "connection") and rule.clip == core.clip
    assert rule.fanout == (opts.get("modulation") == "fanout") and rule.modulated == (name != "plastic")
    assert core.fusable()


def test_a_rule_refuses_unknown_words() -> None:
    with pytest.raises(ValueError, match="unknown rule kind 'clip'"):  # the deprecated alias is the cores' business
        Rule("clip", "connection", 1.0, False)
    with pytest.raises(ValueError, match="unknown alpha 'synapse'"):
        Rule("hebb", "synapse", 1.0, False)
    with pytest.raises(ValueError, match="fan-out modulation needs a modulated rule"):
        Rule("hebb", "connection", 1.0, True)
    with pytest.raises(TypeError, match="no fused recurrence for TanhRNN"):
        rule_of(plastic_core.make_core("rnn", 3, 4))


def test_every_eager_trace_update_runs_the_one_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-step cores, PlasticLinear, PlasticLSTMCore and the fused eager kernels all update their traces
    through ``plastic_core.hebbian.trace_update``: a module with a rule of its own would not show up here."""
    import torch

    from plastic_core import fused, hebbian, plastic_linear, plastic_lstm, plastic_rnn, recurrence

    seen: list[tuple[str, str]] = []

    def recording(module: str):
        def wrapper(rule, *args, **kwargs):
            seen.append((module, rule))
            return hebbian.trace_update(rule, *args, **kwargs)
        return wrapper

    for module in (recurrence, plastic_linear, plastic_lstm, plastic_rnn):
        monkeypatch.setattr(module, "trace_update", recording(module.__name__.split(".")[-1]))
    x = torch.randn(2, 3)
    for name, opts in (("plastic", {"rule": "oja"}), ("modulated", {}), ("retroactive", {})):
        core = plastic_core.make_core(name, 3, 4, **opts)
        core.fused = False
        core.step(x, core.initial_state(2))  # the per-step path
        core.fused = True
        with torch.no_grad():
            fused.PlasticTape(core, core.initial_state(2), backend="eager").step(x)  # the fused eager kernels
    layer = plastic_core.PlasticLinear(3, 2, rule="decay")
    layer(x, layer.initial_state(2))
    for modulation in ("fanout", None):
        lstm = plastic_core.PlasticLSTMCore(3, 4, modulation=modulation)
        lstm.step(x, lstm.initial_state(2))
    assert seen == [("plastic_rnn", "oja"), ("recurrence", "oja"), ("plastic_rnn", "modulated"),
                    ("recurrence", "modulated"), ("plastic_rnn", "retroactive"), ("recurrence", "retroactive"),
                    ("plastic_linear", "decay"),
                    ("plastic_lstm", "modulated"), ("plastic_lstm", "hebb")]
