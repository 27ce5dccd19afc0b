"""The measurements behind `plastic bench` run from the library, on tiny sizes (speeds are not asserted)."""

from __future__ import annotations

from agents.benchmarks import envs as env_bench
from agents.benchmarks.core import measure_core
from agents.benchmarks.isolated import run_isolated
from agents.benchmarks.trainer import default_impls, measure_trainer
from plastic_core import count_parameters, make_core


def test_a_core_measurement_in_its_own_process_returns_its_numbers():
    kwargs = {"core": "plastic", "batch": 3, "hidden": 6, "steps": 4, "repeats": 1, "threads": 1}
    result = run_isolated("agents.benchmarks.core:measure_core", kwargs)
    assert isinstance(result, dict), result
    assert result["params"] == count_parameters(make_core("plastic", 17, 6))
    assert result["steps_per_s"] > 0 and result["saved_mb"] > 0
    here = measure_core(**kwargs, impl="reference")
    assert here["params"] == result["params"] and here["saved_mb"] > result["saved_mb"]  # per-step graph


def test_a_failed_measurement_is_one_line_naming_the_error():
    result = run_isolated("agents.benchmarks.core:measure_core", {"core": "nope", "batch": 1, "hidden": 1})
    assert isinstance(result, str) and result.startswith("failed: ") and "nope" in result and "\n" not in result


def test_trainer_measurement_counts_env_steps_and_the_floor():
    result = measure_trainer("retroactive", batch=2, hidden=4, impl="stepwise", threads=1, warmup=0, iterations=1)
    assert result["env_steps_per_s"] > 0 and result["impl"] == "stepwise"
    assert 0 < result["of_floor"] and result["floor_ms_per_step"] > 0
    assert default_impls("rnn", 30, 100) == ["trainer"] and default_impls("plastic", 256, 256) == ["trainer"]


def test_env_rates_and_their_table():
    rates = env_bench.env_rates("Plastic/ReversalBandit-v0", [2], min_steps=50)
    assert set(rates) == {"single", "sync B=2", "native B=2"} and min(rates.values()) > 0
    table = env_bench.markdown_table({"Plastic/ReversalBandit-v0": rates}, [2]).splitlines()
    assert table[0].startswith("| env | single | Sync B=2 | native B=2 |") and len(table) == 3
    assert env_bench.human(1_234_567) == "1.23M" and env_bench.human(93_000) == "93k"
