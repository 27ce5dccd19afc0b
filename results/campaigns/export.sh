#!/usr/bin/env bash
# Copy what the campaign has so far into results/campaigns/<grid>/ of the main checkout: the report (table,
# figures, statistics), rewards.csv (every run's reward per iteration), and plastic inspect's figures of the
# neuromodulated runs. Reads the run folders only; the runs may still be training.
set -eu
cd /work/main
for grid in maze2019 cue_reward2019 maze2018; do
  src=~/campaigns/$grid
  [ -d "$src" ] || continue
  ls -d "$src"/*-s*/metrics.csv >/dev/null 2>&1 || continue
  .venv/bin/plastic sweep report "$src" --finished --eval-episodes ${EVAL:-300}
  dst=results/campaigns/$grid
  mkdir -p "$dst"
  cp "$src"/{report.md,paper_figure.png,statistics.md,statistics.json,rewards.csv,curves.png,curves_wall.png,runs.json} "$dst"/
  for run in "$src"/modulated-s0 "$src"/retroactive-s0 "$src"/plastic-s0; do
    [ -f "$run/checkpoint.pt" ] || continue
    .venv/bin/plastic inspect "$run" --episodes ${EPISODES:-300} --out "$dst/inspect-$(basename $run)"
  done
done
