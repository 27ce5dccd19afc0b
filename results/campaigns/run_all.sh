#!/usr/bin/env bash
# Issue 27's campaign, the papers' exact presets (re-run this script to continue: finished runs are skipped,
# unfinished ones resume from their last checkpoint). Runs from the frozen checkout /work/campaign, niced.
set -u
cd /work/campaign
sweep() { nice -n 19 .venv/bin/plastic sweep "$@" --num-cpus 2 --no-progress; }
sweep maze2019 --seeds 0 1 2 --iterations 5000 --out ~/campaigns/maze2019
sweep cue_reward2019 --seeds 0 1 2 --iterations 3000 --out ~/campaigns/cue_reward2019
sweep maze2018 --seeds 0 1 2 --iterations 2000 --out ~/campaigns/maze2018
sweep maze2019 --seeds 0 1 2 3 4 --iterations 5000 --out ~/campaigns/maze2019
