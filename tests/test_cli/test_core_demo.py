"""The demo (``make demo``) really learns: a plastic core completes patterns it saw only within the episode."""

from __future__ import annotations

import importlib

import torch

from plastic_core import make_core


def load_demo():
    return importlib.import_module("agents.cli.core_demo")


def test_episodes_hide_half_of_the_pattern_in_the_cue():
    demo = load_demo()
    xs, target = demo.episodes(5, torch.Generator().manual_seed(0))
    assert xs.shape == (demo.SHOW + demo.BLANK + 1, 5, demo.BITS) and target.shape == (5, demo.BITS)
    torch.testing.assert_close(xs[0], target)
    assert not xs[demo.SHOW : demo.SHOW + demo.BLANK].any()
    cue = xs[-1]
    assert ((cue == 0).sum(dim=1) == demo.BITS // 2).all() and ((cue == target) | (cue == 0)).all()


def test_plastic_core_learns_pattern_completion_and_uses_its_traces(capsys):
    demo = load_demo()
    torch.set_num_threads(1)
    loss = demo.train("plastic", hidden=16, updates=250, batch=32, lr=3e-3, seed=0)
    out = capsys.readouterr().out
    assert loss < 0.25, out  # copying the cue scores 0.5, outputting zeros 1.0
    assert "update  250" in out and "|Hebb| mean" in out
    frozen = float(out.split("switched off (alpha = 0): ")[1].split()[0])
    assert frozen > 1.5 * loss, out  # without its plastic weights the same network forgets


def test_completer_reads_the_last_step():
    demo = load_demo()
    model = demo.Completer(make_core("rnn", demo.BITS, 4))
    xs = torch.randn(5, 3, demo.BITS)
    out, state = model(xs)
    hs, _ = model.core.unroll(xs, model.core.initial_state(3))
    torch.testing.assert_close(out, model.readout(hs[-1]))
    assert set(state) == {"h"}
