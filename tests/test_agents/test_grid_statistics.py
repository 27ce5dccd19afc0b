"""The papers' figure and statistics of a grid (agents.sweep.statistics) on synthetic grids with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats as scipy_stats

from agents.sweep import statistics as st
from agents.sweep.statistics import RunCurve

ITERATIONS, BIN, SEEDS, STEP = 1000, 10, 5, 400


def synthetic_grid() -> list[RunCurve]:
    """Three cores of 5 seeds over 1,000 iterations. 'plastic' is 'rnn' with its seeds' curves handed round (the
    same values in every bin, in another order: the rank-sum p is 1 everywhere); 'modulated' equals 'rnn' up to
    iteration 400, then is 5 higher: its difference starts exactly with the bin that ends at 410."""
    rng = np.random.default_rng(0)
    its = np.arange(1, ITERATIONS + 1)
    base = rng.normal(0.0, 1.0, (SEEDS, ITERATIONS)) + its / 100
    runs = []
    for seed in range(SEEDS):
        runs.append(RunCurve(f"rnn-s{seed}", "rnn", 30, its, base[seed]))
        runs.append(RunCurve(f"plastic-s{seed}", "plastic", 30, its, base[(seed + 2) % SEEDS]))
        runs.append(RunCurve(f"modulated-s{seed}", "modulated", 30, its, base[seed] + 5.0 * (its > STEP)))
    return runs


def test_bins_are_means_over_their_iterations():
    run = RunCurve("r", "rnn", 4, np.arange(1, 8), np.array([1.0, 3.0, 5.0, 7.0, 9.0, 11.0, 13.0]))
    ends, values = st.bin_curves([run], 3)
    np.testing.assert_array_equal(ends, [3, 6])  # the 7th iteration does not fill a bin
    np.testing.assert_allclose(values, [[3.0, 9.0]])
    # the range every run covers: a shorter run cuts the bins of a longer one
    short = RunCurve("s", "rnn", 4, np.arange(1, 4), np.array([2.0, 2.0, 2.0]))
    ends, values = st.bin_curves([run, short], 3)
    np.testing.assert_array_equal(ends, [3])
    with pytest.raises(ValueError, match="fewer than one bin"):
        st.bin_curves([short], 4)
    with pytest.raises(ValueError, match="positive"):
        st.bin_curves([short], 0)
    # a run logged every other iteration still has one value per bin; a gap of a whole bin is refused
    sparse = RunCurve("p", "rnn", 4, np.array([2, 4, 6]), np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(st.bin_curves([sparse], 2)[1], [[1.0, 2.0, 3.0]])
    gap = RunCurve("g", "rnn", 4, np.array([1, 2, 5, 6]), np.ones(4))
    with pytest.raises(ValueError, match="run g has no logged iteration in bin 2"):
        st.bin_curves([gap], 2)


def test_onsets_find_the_known_step_and_never_flag_equal_groups():
    stats = st.grid_statistics(synthetic_grid(), bin_size=BIN)
    onsets = {(o["a"], o["b"]): o for o in stats["onsets"]}
    assert onsets[("rnn", "plastic")]["onset"] is None  # the same values per bin: p = 1 everywhere
    assert max(onsets[("rnn", "plastic")]["p"]) == pytest.approx(1.0)
    step = onsets[("rnn", "modulated")]
    assert step["onset"] == STEP + BIN and step["ahead"] == "modulated"
    assert step["p"][STEP // BIN - 1] == pytest.approx(1.0)  # the last bin before the step: identical values
    # each bin's p is scipy's ranksums of the seeds' bin means, as the papers' figure scripts compute it
    k = 70
    rnn = [np.mean(r.rewards[k * BIN:(k + 1) * BIN]) for r in synthetic_grid() if r.group == "rnn"]
    mod = [np.mean(r.rewards[k * BIN:(k + 1) * BIN]) for r in synthetic_grid() if r.group == "modulated"]
    assert step["p"][k] == pytest.approx(scipy_stats.ranksums(rnn, mod).pvalue)
    assert onsets[("plastic", "modulated")]["onset"] == STEP + BIN


def test_onset_needs_significance_to_the_end():
    ends = np.array([10, 20, 30, 40])
    apart = np.array([[0.0, 9.0, 9.0, 0.0]] * 5) + np.arange(5)[:, None] * 0.1
    same = np.array([[0.0, 0.0, 0.0, 0.0]] * 5) + np.arange(5)[:, None] * 0.1
    (pair,) = st.significance_onsets({"a": apart, "b": same}, ends)
    assert pair["onset"] is None  # significant in bins 2-3, but not in the last bin
    apart[:, 3] = 9.0
    (pair,) = st.significance_onsets({"a": apart, "b": same}, ends)
    assert pair["onset"] == 20 and pair["ahead"] == "a"


def test_final_table_medians_and_mann_whitney():
    stats = st.grid_statistics(synthetic_grid(), bin_size=BIN)
    rows = {r["group"]: r for r in stats["finals"]}
    by_hand = [np.mean(r.rewards[-100:]) for r in synthetic_grid() if r.group == "modulated"]
    assert rows["modulated"]["median"] == pytest.approx(np.median(by_hand))
    assert rows["modulated"]["q25"] == pytest.approx(np.percentile(by_hand, 25))
    pairs = {(p["a"], p["b"]): p for p in stats["final_pairs"]}
    assert pairs[("rnn", "modulated")]["p"] == pytest.approx(2 / 252)  # 5 vs 5, fully apart: exact two-sided p
    assert pairs[("rnn", "plastic")]["p"] == pytest.approx(1.0)
    text = st.statistics_markdown(stats)
    assert "| Non-plastic vs Simple neuromodulation | 0.0079 | 410 | Simple neuromodulation |" in text
    assert "| Non-plastic vs Non-modulated plastic | 1 | not at the end | - |" in text


def test_paper_figure_smoothing_axes_and_names(tmp_path):
    stats = st.grid_statistics(synthetic_grid(), bin_size=BIN)
    fig = st.draw_paper_figure(stats["ends"], stats["groups"], 30, "a title", smooth=5)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "training iterations" and ax.get_ylabel() == "reward per episode"
    top = [a for a in ax.child_axes if a.get_xlabel()]  # the secondary (top) axis
    assert top and top[0].get_xlabel() == "episodes (30 per iteration)"
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"Non-plastic (n=5)", "Non-modulated plastic (n=5)", "Simple neuromodulation (n=5)"}
    # the line is the median over seeds of each seed's 5-bin trailing moving average
    values = stats["groups"]["modulated"]
    smoothed = np.stack([[row[max(0, k - 4):k + 1].mean() for k in range(len(row))] for row in values])
    np.testing.assert_allclose(lines["Simple neuromodulation (n=5)"].get_ydata(), np.median(smoothed, axis=0))
    np.testing.assert_array_equal(lines["Non-plastic (n=5)"].get_xdata(), np.arange(1, 101) * BIN)
    out = st.write_statistics(synthetic_grid(), tmp_path, "grid", bin_size=BIN)
    assert (tmp_path / "paper_figure.png").stat().st_size > 10_000
    saved = json.loads((tmp_path / "statistics.json").read_text())
    assert saved["bin_size"] == BIN and len(saved["bins"]["ends"]) == 100 and out["iterations"] == ITERATIONS
    assert st.label("modulated lr=0.001") == "Simple neuromodulation (lr=0.001)"


def test_report_of_the_finished_runs_of_a_grid_still_running(tmp_path, capsys):
    from agents.cli import sweep as sweep_cli
    from agents.cli import train

    grid = tmp_path / "grid"
    common = ["--env", "Plastic/ReversalBandit-v0", "--hidden", "4", "--batch", "2", "--env-kwargs",
              '{"episode_length": 6}', "--no-progress", "--no-tensorboard"]
    for core in ("rnn", "modulated"):
        for seed in (0, 1):
            assert train.main([*common, "--core", core, "--seed", str(seed), "--iterations", "6",
                               "--out", str(grid / f"{core}-s{seed}")]) == 0
    # a run still training: its config asks for more iterations than it has logged
    still = grid / "rnn-s2"
    assert train.main([*common, "--core", "rnn", "--seed", "2", "--iterations", "4", "--out", str(still)]) == 0
    config = json.loads((grid / "rnn-s2" / "config.json").read_text())
    config["episodes"] = 40
    (grid / "rnn-s2" / "config.json").write_text(json.dumps(config))
    assert sweep_cli.main(["report", str(grid), "--eval-episodes", "0", "--finished", "--bin", "2"]) == 0
    saved = json.loads((grid / "statistics.json").read_text())
    assert saved["iterations"] == 6 and [r["seeds"] for r in saved["finals"]] == [2, 2]  # rnn-s2 left out
    header = (grid / "rewards.csv").read_text().splitlines()[0].split(",")
    assert "rnn-s2" in header and len(header) == 6  # ... but its rewards are kept
    assert sweep_cli.main(["report", str(grid), "--eval-episodes", "0", "--bin", "2"]) == 0
    assert json.loads((grid / "statistics.json").read_text())["iterations"] == 4  # the range all five cover
