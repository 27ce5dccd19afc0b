"""plastic_core.roofline: the FLOP and byte counts, the levels, the roof microbenchmarks and the kernel table
(tiny sizes: the arithmetic and the table's shape, not this machine's speed)."""

import math

import pytest
import torch

from agents.cli import benchmark_core
from plastic_core import native, roofline

OPS = native.load(torch.float32)
needs_native = pytest.mark.skipif(OPS is None, reason="native kernels unavailable (no C++ compiler)")
TINY_LEVELS = {"L1": 8 << 10, "L2": 64 << 10, "L3": 256 << 10, "DRAM": 1 << 20}


def test_counts_by_hand():
    # modulated, B=2, N=3: 18 entries; forward = product 4 + update 2 flops; Hebb, w and alpha (once per 4
    # elements) loaded, then Hebb loaded and stored: 3.5 arrays of 4 bytes
    assert roofline.count("modulated", "forward step", 2, 3) == (18 * 6, 18 * 3.5 * 4)
    assert roofline.count("modulated", "trace update", 2, 3) == (18 * 2, 18 * 2 * 4)
    # retroactive backward over 5 steps with 3 recomputed updates, float64
    flops, nbytes = roofline.count("retroactive", "backward sequence", 2, 3, steps=5, recomputed=3, itemsize=8)
    assert flops == 18 * (5 * 26 + 3 * 6)
    assert nbytes == 18 * 8 * (5 * 14 + 3 * 4)
    # the update of hebb is H + eta (h_j h_i): 3 operations; decay adds the decay's multiply
    assert roofline.count("hebb", "trace update", 1, 1)[0] == 3
    assert roofline.count("decay", "trace update", 1, 1)[0] == 4
    with pytest.raises(ValueError, match="unknown kernel"):
        roofline.count("hebb", "sideways", 1, 1)


def test_working_set_and_levels():
    matrix = 10 * 10 * 4
    assert roofline.working_set("hebb", "forward step", 30, 10) == matrix * 32  # 30 traces, w, alpha
    assert roofline.working_set("retroactive", "trace update", 30, 10) == matrix * 62
    # backward: one element's Hebb, E and their adjoints, w, alpha, dL/dalpha, 15 recomputed (Hebb, E) pairs
    assert roofline.working_set("retroactive", "backward sequence", 30, 10, segment=16) == matrix * (4 + 3 + 30)
    capacity = {"L1": 100, "L2": 1000, "L3": 10_000, "DRAM": 0}
    assert [roofline.level_of(n, capacity) for n in (100, 101, 1000, 10_000, 10_001)] == [
        "L1", "L2", "L2", "L3", "DRAM"]


def test_cache_sizes_from_sys(tmp_path):
    for index, (level, kind, size) in enumerate([(1, "Data", "48K"), (1, "Instruction", "32K"),
                                                 (2, "Unified", "2048K"), (3, "Unified", "32M")]):
        folder = tmp_path / f"index{index}"
        folder.mkdir()
        (folder / "level").write_text(f"{level}\n")
        (folder / "type").write_text(f"{kind}\n")
        (folder / "size").write_text(f"{size}\n")
    assert roofline.cache_sizes(tmp_path) == {"L1": 48 << 10, "L2": 2 << 20, "L3": 32 << 20}
    assert roofline.cache_sizes(tmp_path / "missing") == roofline.DEFAULT_CACHES


def test_roof_of_a_row():
    roofs = roofline.Roofs(mul_add=10e9, fma=20e9, bandwidth={"L1": 100e9, "L2": 40e9, "L3": 20e9, "DRAM": 10e9},
                           capacity={"L1": 1 << 10, "L2": 1 << 20, "L3": 1 << 30, "DRAM": 0})
    # 1 GFLOP and 4 GB in 1 s from L2: memory roof 0.25 x 40 = 10 GFLOP/s = the peak -> compute bound at 10%
    row = roofline._row("hebb", "forward step", 1, 1, 1.0, 1e9, 4e9, 2 << 10, roofs)
    assert (row.level, row.gflops, row.gbytes) == ("L2", 1.0, 4.0)
    assert math.isclose(row.of_peak, 0.1) and math.isclose(row.of_bandwidth, 0.1) and math.isclose(row.of_roof, 0.1)
    assert row.bound == "compute"
    # twice the bytes: the memory roof (5 GFLOP/s) binds
    row = roofline._row("hebb", "forward step", 1, 1, 1.0, 1e9, 8e9, 2 << 10, roofs)
    assert row.bound == "L2" and math.isclose(row.of_roof, 0.2)


@needs_native
def test_microbenchmarks_count_their_work():
    assert OPS.peak_flops(10, False) == 2 * 8 * 12 * 10  # 12 chains of 8 lanes, a multiply and an add each
    src, dst = torch.arange(100.0), torch.zeros(100)
    OPS.copy_bytes(src, dst, 3)
    assert torch.equal(src, dst)
    with pytest.raises(RuntimeError, match="same size"):
        OPS.copy_bytes(src, torch.zeros(99), 1)


@pytest.fixture(scope="module")
def tiny_roofs():
    if OPS is None:
        pytest.skip("native kernels unavailable (no C++ compiler)")
    return roofline.measure_roofs(seconds=0.002, levels=TINY_LEVELS)


def test_measured_roofs(tiny_roofs):
    assert tiny_roofs.mul_add > 1e8 and math.isfinite(tiny_roofs.mul_add)
    assert tiny_roofs.fma is None or tiny_roofs.fma > 1e8
    assert set(tiny_roofs.bandwidth) == set(roofline.LEVELS)
    assert all(1e8 < b < 1e13 for b in tiny_roofs.bandwidth.values())
    table = roofline.format_roofs(tiny_roofs)
    assert "multiply + add" in table and all(f"copy bandwidth {level}" in table for level in roofline.LEVELS)


def test_kernel_rows(tiny_roofs):
    rows = roofline.measure_kernels(tiny_roofs, configs=((2, 8), (3, 5)), steps=5, seconds=0.001)
    labels = [label for label, _, _ in roofline.RULES]
    assert [(r.batch, r.hidden, r.rule, r.kernel) for r in rows] == [
        (b, n, rule, kernel) for b, n in ((2, 8), (3, 5)) for rule in labels for kernel in roofline.KERNELS]
    for r in rows:
        if r.kernel == "backward sequence":  # 5 steps, of which between 0 and 4 recomputed from checkpoints
            low, high = (roofline.count(r.rule, r.kernel, r.batch, r.hidden, 5, k) for k in (0, 4))
            assert low[0] < r.flops < high[0] and low[1] < r.bytes < high[1]
        else:
            assert (r.flops, r.bytes) == roofline.count(r.rule, r.kernel, r.batch, r.hidden)
        assert 0 < r.of_peak <= 1.5 and 0 < r.of_roof <= 10 and r.seconds > 0
    table = roofline.format_rows(rows)
    assert table.count("\n") == len(rows) + 1


def test_cli_roofline(tiny_roofs, monkeypatch, capsys):
    monkeypatch.setattr(roofline, "measure_roofs", lambda: tiny_roofs)
    benchmark_core.main(["--roofline", "--configs", "2x4", "--steps", "3"])
    out = capsys.readouterr().out
    assert "copy bandwidth L2" in out and "backward over 3 steps" in out
    assert sum(line.startswith("| ") and "2x4" in line for line in out.splitlines()) == 15
