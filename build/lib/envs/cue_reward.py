"""Cue-reward association (Backpropamine, Miconi et al. 2019): which of 4 random cues brings reward?

## Description
Each episode draws ``n_cues`` distinct random ±1 cues of ``cue_size`` bits and picks one as the target. The
episode is a sequence of trials, each ``trial_length`` = L = 5..8 steps (uniform, both ends included):

    blank | cue zone: L - 3 steps, ``cues_per_trial`` of them show a cue, the rest blank | go | blank

At the go step (go bit on) the agent answers whether the target was among this trial's cues; on every other
step the action does not matter (as in the paper).

Which cues a trial shows (our choice; the paper says "2 of the 4 cues"): with probability ``target_probability``
(0.5) the trial shows the target plus ``cues_per_trial - 1`` distinct non-target cues, otherwise
``cues_per_trial`` distinct non-targets, in a random order, at random distinct steps of the cue zone. With 4
cues and 2 per trial this is exactly a uniformly random pair of distinct cues (3 of the 6 pairs hold the target);
for other sizes it keeps "target shown" at one trial in two, so that always answering 1 (or 0) earns 0 on
average. Trials are laid back to back; the last one may be cut by the end of the episode (when the cut comes
before its go step, no answer is asked for it). Everything random in an episode (the cues, the target, the
trials' lengths, cues and cue steps) is drawn at reset.

## Observation
``Box(26,)`` float32 at the defaults (``cue_size + 6`` inputs):

| index | input | range |
|---|---|---|
| 0 .. cue_size-1 (0-19) | the bits of the cue shown at this step (all 0 on steps without a cue) | {-1, 0, 1} |
| cue_size (20) | go bit: 1 at the go step of a trial | {0, 1} |
| cue_size+1 (21) | bias | 1 |
| cue_size+2 (22) | t / episode_length | [0, 1] |
| cue_size+3 (23) | previous reward | {-1, 0, 1} |
| cue_size+4 .. cue_size+5 (24-25) | previous action one-hot (all 0 at t = 0) | {0, 1} |

The authors' code has one more input, always 0 (27 in all, TASKS.md section 2); this env has none.
Info (about the step of the observation returned, i.e. the step the next action answers): "target" (index of
the target cue), "cue" (index of the cue shown, -1 none), "trial", "step_in_trial", "trial_length",
"trial_start", "go", "target_shown" (the target is among this trial's cues); the final observation (t = T) has
trial = step_in_trial = cue = -1 and trial_length = 0. The reset info also carries "cues" (n_cues, cue_size).

## Actions
``Discrete(2)``: at the go step, 1 means "the target was shown in this trial" and 0 "it was not"; on every other
step the action is ignored.

## Rewards
At the go step +1 for the right answer and -1 for the wrong one, seen as the previous-reward input of the next
step; 0 on every other step, whatever the action (as in the paper).

## Episode end
Truncated after ``episode_length`` steps (120 by default, about 18 trials); never terminated.

## Arguments
``n_cues`` (4; at least 2 and at least ``cues_per_trial + 1``, at most 2 ** ``cue_size``), ``cue_size`` (20: bits
per cue), ``episode_length`` (120), ``cues_per_trial`` (2), ``trial_length`` ((5, 8): the shortest and longest
L, both included; the shortest at least ``cues_per_trial + 3``), ``target_probability`` (0.5, in [0, 1]: the
chance that a trial shows the target).

## Registered ids
``Plastic/CueReward-v0``: ``gym.make`` gives :class:`CueRewardEnv` (render modes human, rgb_array, ansi);
``gym.make_vec(..., vectorization_mode="vector_entry_point")`` gives :class:`CueRewardVectorEnv` (rgb_array,
ansi), the same episodes as ``SyncVectorEnv`` over B ``CueRewardEnv``s seeded seed, seed + 1, ...

## Source paper
Miconi, Rawal, Clune, Stanley, "Backpropamine: training self-modifying neural networks with differentiable
neuromodulated plasticity", ICLR 2019 (the cue-reward association task; TASKS.md section 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from envs.checks import check_int
from envs.episodic import EpisodicEnv, EpisodicVectorEnv, MetaRLBatch

N_ACTIONS = 2  # 0 = "target not shown", 1 = "target shown"


@dataclass(frozen=True)
class CueRewardConfig:
    """The task's settings, checked at construction (errors name the keyword argument)."""

    n_cues: int = 4
    cue_size: int = 20
    episode_length: int = 120
    cues_per_trial: int = 2
    trial_length: tuple[int, int] = (5, 8)
    target_probability: float = 0.5

    def __post_init__(self) -> None:
        check_int("cues_per_trial", self.cues_per_trial, 1)
        check_int("cue_size", self.cue_size, 1)
        check_int("episode_length", self.episode_length, 1)
        check_int("n_cues", self.n_cues, 2)
        if self.n_cues < self.cues_per_trial + 1:
            raise ValueError(
                f"n_cues must be at least cues_per_trial + 1 = {self.cues_per_trial + 1} (a trial without the "
                f"target shows {self.cues_per_trial} distinct non-target cues), got {self.n_cues}"
            )
        if self.n_cues > 2**self.cue_size:
            raise ValueError(f"n_cues={self.n_cues} distinct cues do not exist with cue_size={self.cue_size} bits")
        if not isinstance(self.trial_length, Sequence) or len(self.trial_length) != 2:
            raise TypeError(f"trial_length must be a pair (min, max), got {self.trial_length!r}")
        shortest = self.cues_per_trial + 3
        low = check_int("trial_length[0]", self.trial_length[0], shortest)
        high = check_int("trial_length[1]", self.trial_length[1], low)
        object.__setattr__(self, "trial_length", (low, high))
        p = self.target_probability
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"target_probability must be a number in [0, 1], got {p!r}")


def draw_cues(rng: np.random.Generator, n_cues: int, cue_size: int) -> np.ndarray:
    """``n_cues`` distinct random ±1 vectors, (n_cues, cue_size) float32."""
    while True:
        cues = rng.integers(0, 2, size=(n_cues, cue_size)) * 2 - 1
        same = (cues[:, None, :] == cues[None, :, :]).all(axis=2)  # (n_cues, n_cues)
        if same.sum() == n_cues:  # only the diagonal
            return cues.astype(np.float32)


def draw_cue_reward_episode(rng: np.random.Generator, config: CueRewardConfig) -> dict[str, np.ndarray]:
    """All the randomness of one episode: cues, target and trial schedule. Step tables are (T + 1,), row T padding."""
    n, T, c = config.n_cues, config.episode_length, config.cues_per_trial
    low, high = config.trial_length
    cues = draw_cues(rng, n, config.cue_size)
    target = int(rng.integers(n))

    n_trials = T // low + 1  # enough trials to cover T steps
    lengths = rng.integers(low, high + 1, size=n_trials)
    shown = rng.random(n_trials) < config.target_probability
    # Cues of each trial: c distinct non-targets, the first replaced by the target when shown, then shuffled.
    non_targets = np.delete(np.arange(n), target)
    picks = non_targets[np.argsort(rng.random((n_trials, n - 1)), axis=1)[:, :c]]
    picks[shown, 0] = target
    picks = np.take_along_axis(picks, np.argsort(rng.random((n_trials, c)), axis=1), axis=1)
    # Their positions: c distinct slots among the L - 3 slots of the cue zone, in increasing order.
    keys = rng.random((n_trials, high - 3))
    keys[np.arange(high - 3)[None, :] >= (lengths - 3)[:, None]] = 2.0  # slots beyond the zone come last
    slots = np.sort(np.argsort(keys, axis=1)[:, :c], axis=1)

    ends = np.cumsum(lengths)  # ends[-1] > T
    starts = ends - lengths
    steps = np.arange(T + 1)
    trial = np.searchsorted(ends, steps, side="right")
    step_in_trial = steps - starts[trial]
    trial_length = lengths[trial]
    go = step_in_trial == trial_length - 2
    trial_start = step_in_trial == 0
    target_shown = shown[trial]
    trial[T], step_in_trial[T], trial_length[T] = -1, -1, 0  # row T (the final observation) is in no trial
    go[T] = trial_start[T] = target_shown[T] = False
    cue = np.full(T + 1, -1, dtype=np.int64)
    positions = starts[:, None] + 1 + slots
    inside = positions < T
    cue[positions[inside]] = picks[inside]
    return {
        "cues": cues,
        "target": np.int64(target),
        "cue": cue,
        "trial": trial,
        "step_in_trial": step_in_trial,
        "trial_length": trial_length,
        "trial_start": trial_start,
        "go": go,
        "target_shown": target_shown,
    }


_STEP_TABLES = ("cue", "trial", "step_in_trial", "trial_length", "trial_start", "go", "target_shown")

# Colours of the rgb_array frame.
_BG = (16, 16, 24)
_BLANK = (80, 80, 90)
_BIT_ON, _BIT_OFF = (235, 235, 235), (0, 0, 0)
_TARGET = (250, 200, 40)
_GO = (250, 200, 40)
_ACTION_COLOURS = ((255, 140, 60), (80, 140, 255))  # 0 = "not shown", 1 = "shown"
_REWARD_COLOURS = {1.0: (60, 200, 90), -1.0: (220, 60, 60), 0.0: _BLANK}
_TRIAL_LINE = (110, 110, 170)
_TRIAL_TEXT = (160, 160, 230)
_CURSOR = (255, 255, 255)
_TEXT = (225, 225, 235)
_CUE_PALETTE = ((0, 200, 210), (200, 120, 255), (255, 120, 180), (170, 230, 90), (240, 240, 120), (120, 170, 255))
_ANSWER_NAMES = ("target not shown", "target shown")
# Its layout, in pixels (text: pygame's default font at these sizes).
_TEXT_PX, _SMALL_PX = 18, 16
_ROW_PX = 14  # the cue, go, answer and reward rows
_CUE_SLOT = 24  # width of one cue's column in the left panel
_MARGIN = 8
_TEXT_MIN_WIDTH = 560  # the text lines' room (wider than the picture for short episodes)


def _cue_colour(j: int) -> tuple[int, int, int]:
    return _CUE_PALETTE[j % len(_CUE_PALETTE)]


def _dim(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    return tuple(round(0.35 * c + 0.65 * b) for c, b in zip(colour, _BG, strict=True))


class CueRewardBatch(MetaRLBatch):
    """B cue-reward episodes in lock-step. Tables: cues (B, n_cues, cue_size), step tables (B, T + 1)."""

    n_actions = N_ACTIONS

    def __init__(self, config: CueRewardConfig, num_envs: int) -> None:
        super().__init__(num_envs, config.episode_length)
        self.config = config
        T = config.episode_length
        self.cues = np.zeros((num_envs, config.n_cues, config.cue_size), dtype=np.float32)
        self.target = np.zeros(num_envs, dtype=np.int64)
        self.tables = {
            "cue": np.full((num_envs, T + 1), -1, dtype=np.int64),
            "trial": np.full((num_envs, T + 1), -1, dtype=np.int64),
            "step_in_trial": np.full((num_envs, T + 1), -1, dtype=np.int64),
            "trial_length": np.zeros((num_envs, T + 1), dtype=np.int64),
            "trial_start": np.zeros((num_envs, T + 1), dtype=np.bool_),
            "go": np.zeros((num_envs, T + 1), dtype=np.bool_),
            "target_shown": np.zeros((num_envs, T + 1), dtype=np.bool_),
        }

    def draw_episode(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return draw_cue_reward_episode(rng, self.config)

    def load_tables(self, index: int, episode: dict[str, np.ndarray]) -> None:
        self.cues[index] = episode["cues"]
        self.target[index] = episode["target"]
        for key in _STEP_TABLES:
            self.tables[key][index] = episode[key]

    def observation_space(self) -> gym.spaces.Box:
        size = self.config.cue_size
        # The bias (always 1) gets [0, 1]: Gymnasium's env checker warns on every gym.make when a low equals its high.
        low = np.array([-1.0] * size + [0.0] + [0.0, 0.0, -1.0] + [0.0] * N_ACTIONS, dtype=np.float32)
        high = np.array([1.0] * size + [1.0] + [1.0, 1.0, 1.0] + [1.0] * N_ACTIONS, dtype=np.float32)
        return gym.spaces.Box(low, high, dtype=np.float32)

    def write_task_inputs(self, out: np.ndarray) -> None:
        cue = self.tables["cue"][self.rows, self.t]
        out[:, :-1] = self.cues[self.rows, np.maximum(cue, 0)] * (cue >= 0)[:, None]
        out[:, -1] = self.tables["go"][self.rows, self.t]

    def play(self, actions: np.ndarray) -> np.ndarray:
        go = self.tables["go"][self.rows, self.t]
        correct = actions == self.tables["target_shown"][self.rows, self.t]
        return np.where(go, np.where(correct, 1.0, -1.0), 0.0)

    def step_infos(self) -> dict[str, np.ndarray]:
        infos = {"target": self.target.copy()}
        for key in _STEP_TABLES:
            infos[key] = self.tables[key][self.rows, self.t]
        return infos

    def episode_info(self, episode: dict[str, np.ndarray]) -> dict[str, Any]:
        return {"cues": episode["cues"].copy()}

    # --- rendering -----------------------------------------------------------------------------------------------
    def render_rgb(self, index: int) -> np.ndarray:
        """The episode so far, labelled. Top: step, trial, target and return. Left: the cues C0, C1, ... as
        columns of bits (white +1, black -1), the target framed in yellow, each name in the cue's colour. Right:
        the timeline, one column per step up to the current one, rows labelled: trial numbers at the trial starts
        (blue lines), target marker, cue bits, cue (the colour of the cue shown), go, answer and reward; a white
        tick at the current step. Bottom: the current trial's cues, the last answer and its reward, a key to the
        colours. The shape depends only on the settings (n_cues, cue_size, episode_length)."""
        from envs import maze_render as draw

        T, size, n = self.episode_length, self.config.cue_size, self.config.n_cues
        t = int(self.t[index])
        now = min(t, T - 1)
        seen = np.arange(T + 1) <= now  # steps whose input has been shown
        played = np.arange(T + 1) < t
        cue = self.tables["cue"][index]
        target = int(self.target[index])
        # rows: marker, bits, cue, go, action, reward, cursor
        cell = np.zeros((size + 6, T, 3), dtype=np.uint8)
        cell[:] = _BG
        bits = np.where(cue[:T, None] >= 0, self.cues[index][np.maximum(cue[:T], 0)], 0.0).T  # (size, T)
        colours = np.where(bits[..., None] > 0, _BIT_ON, np.where(bits[..., None] < 0, _BIT_OFF, _BLANK))
        cell[1 : size + 1] = np.where(seen[None, :T, None], colours, _BG)
        cell[0, seen[:T] & (cue[:T] == target)] = _TARGET
        for j in range(n):
            cell[size + 1, seen[:T] & (cue[:T] == j)] = _cue_colour(j)
        cell[size + 2, seen[:T] & self.tables["go"][index, :T]] = _GO
        actions = self.actions[index, :T]
        go = self.tables["go"][index, :T]
        for a, colour in enumerate(_ACTION_COLOURS):  # dimmed where the action does not matter (not a go step)
            cell[size + 3, played[:T] & (actions == a) & go] = colour
            cell[size + 3, played[:T] & (actions == a) & ~go] = _dim(colour)
        for value, colour in _REWARD_COLOURS.items():
            cell[size + 4, played[:T] & (self.rewards_seen[index, :T] == value)] = colour
        cell[size + 5, now] = _CURSOR

        width = max(1, min(4, 1200 // T))
        heights = np.array([3] + [4] * size + [_ROW_PX] * 4 + [4])
        timeline = np.repeat(np.repeat(cell, heights, axis=0), width, axis=1)
        starts = np.flatnonzero(seen[:T] & self.tables["trial_start"][index, :T])
        timeline[heights[0] :, starts * width] = _TRIAL_LINE

        panel = np.zeros((heights.sum(), n * _CUE_SLOT, 3), dtype=np.uint8)
        panel[:] = _BG
        for j in range(n):
            x = j * _CUE_SLOT + (_CUE_SLOT - 8) // 2
            if j == target:
                panel[: 2 + 4 * size + 2, x - 2 : x + 10] = _TARGET
            column = np.where(self.cues[index, j][:, None] > 0, _BIT_ON, _BIT_OFF)
            panel[2 : 2 + 4 * size, x : x + 8] = np.repeat(column, 4, axis=0)[:, None, :]

        # Layout: header | cue names, trial numbers | panel, row labels, timeline | text lines | colour key.
        line = draw.font(_TEXT_PX).get_linesize() + 3
        small = draw.font(_SMALL_PX).get_linesize()
        row_names = ("cue bits", "cue", "go", "answer", "reward")
        label_w = max(draw.text_width(name, _SMALL_PX) for name in row_names) + 8
        x_panel = _MARGIN
        x_timeline = x_panel + panel.shape[1] + 12 + label_w
        y_names = _MARGIN + line + 2
        y_picture = y_names + small + 2
        y_text = y_picture + timeline.shape[0] + 8
        frame_w = max(x_timeline + timeline.shape[1] + _MARGIN, _TEXT_MIN_WIDTH)
        frame_h = y_text + 4 * line + _MARGIN
        surface = draw.pygame.Surface((frame_w, frame_h))
        surface.fill(_BG)
        surface.blit(draw.rgb_to_surface(panel), (x_panel, y_picture))
        surface.blit(draw.rgb_to_surface(timeline), (x_timeline, y_picture))

        trial = int(self.tables["trial"][index, now])
        in_trial = int(self.tables["step_in_trial"][index, now])
        length = int(self.tables["trial_length"][index, now])
        rewards = self.rewards_seen[index, :t]
        header = (f"step {t}/{T}    trial {trial} (step {in_trial + 1} of {length})    target C{target}"
                  f"    return {rewards.sum():+.0f}{'    episode over' if t >= T else ''}")
        draw.draw_text(surface, header, (_MARGIN, _MARGIN), _TEXT, _TEXT_PX)
        for j in range(n):
            draw.draw_text(surface, f"C{j}", (x_panel + j * _CUE_SLOT + _CUE_SLOT // 2, y_names), _cue_colour(j),
                           _SMALL_PX, anchor="midtop")
        draw.draw_text(surface, "trial", (x_timeline - 6, y_names), _TEXT, _SMALL_PX, anchor="topright")
        right = x_timeline - 3
        for step in starts:  # trial numbers, skipping those that would overlap
            number = str(int(self.tables["trial"][index, step]))
            if x_timeline + int(step) * width > right + 2:
                right = draw.draw_text(surface, number, (x_timeline + int(step) * width + 2, y_names), _TRIAL_TEXT,
                                       _SMALL_PX).right
        row_tops = np.concatenate([[0], np.cumsum(heights)])
        label_rows = {"cue bits": (1, size + 1)} | {name: (size + r, size + r + 1) for r, name in
                                                     zip(range(1, 5), row_names[1:], strict=True)}
        for name, (first, last) in label_rows.items():
            y = y_picture + (int(row_tops[first]) + int(row_tops[last])) // 2
            draw.draw_text(surface, name, (x_timeline - 6, y), _TEXT, _SMALL_PX, anchor="midright")

        first_step = now - in_trial
        shown = [int(c) for c in cue[first_step : now + 1] if c >= 0]
        text = f"trial {trial}: " + (f"cues shown {', '.join(f'C{c}' for c in shown)}" if shown else "no cue yet")
        if shown and target in shown:
            text += f" (target C{target} shown: the right answer is 1)"
        go_steps = np.flatnonzero(self.tables["go"][index, first_step : now + 1])
        if go_steps.size:
            text += f"; go at step {first_step + int(go_steps[0])}"
        draw.draw_text(surface, text, (_MARGIN, y_text), _TEXT, _TEXT_PX)
        answered = np.flatnonzero(self.tables["go"][index, :t])
        if answered.size:
            s_go = int(answered[-1])
            a, r = int(self.actions[index, s_go]), float(self.rewards_seen[index, s_go])
            text = (f"last go: step {s_go} (trial {int(self.tables['trial'][index, s_go])}), answered {a} "
                    f"\"{_ANSWER_NAMES[a]}\", reward {r:+.0f}")
            draw.draw_text(surface, text, (_MARGIN, y_text + line), _REWARD_COLOURS[r], _TEXT_PX)
        else:
            draw.draw_text(surface, "no go step answered yet", (_MARGIN, y_text + line), _TEXT, _TEXT_PX)
        key = [(_TARGET, "target / go"), (_ACTION_COLOURS[0], f"answer 0 \"{_ANSWER_NAMES[0]}\""),
               (_ACTION_COLOURS[1], f"answer 1 \"{_ANSWER_NAMES[1]}\""), (_dim(_ACTION_COLOURS[1]), "dim: not at go")]
        draw.swatch_legend(surface, key, (_MARGIN, y_text + 2 * line + 2), _TEXT, _SMALL_PX)
        key = [(_REWARD_COLOURS[1.0], "reward +1"), (_REWARD_COLOURS[-1.0], "reward -1"),
               (_TRIAL_LINE, "trial start"), (_CURSOR, "now")]
        draw.swatch_legend(surface, key, (_MARGIN, y_text + 3 * line), _TEXT, _SMALL_PX)
        return draw.surface_to_rgb(surface)

    def render_ansi(self, index: int) -> str:
        T, target = self.episode_length, int(self.target[index])
        t = int(self.t[index])
        now = min(t, T - 1)
        trial = int(self.tables["trial"][index, now])
        first = now - int(self.tables["step_in_trial"][index, now])
        length = int(self.tables["trial_length"][index, now])
        lines = [
            f"CueReward step {t}/{T}  trial {trial} (step {now - first + 1} of {length})  target C{target}  "
            f"target shown this trial: {'yes' if self.tables['target_shown'][index, now] else 'no'}"
        ]
        for j in range(self.config.n_cues):
            bits = "".join("+" if b > 0 else "-" for b in self.cues[index, j])
            lines.append(f"  C{j}{'*' if j == target else ' '} {bits}")
        tokens = []
        for s in range(first, min(first + length, T)):
            c = int(self.tables["cue"][index, s])
            if s > now:
                token = "_"
            elif self.tables["go"][index, s]:
                token = "GO"
                if s < t:
                    token += f"->{self.actions[index, s]} ({self.rewards_seen[index, s]:+.0f})"
            elif c >= 0:
                token = f"C{c}{'*' if c == target else ''}"
            else:
                token = "."
            tokens.append(f"[{token}]" if s == now and t < T else token)
        lines.append("  trial: " + " ".join(tokens))
        if t > 0:
            lines.append(f"  last action {self.actions[index, t - 1]}, reward {self.rewards_seen[index, t - 1]:+.0f}")
        if t >= T:
            lines.append("  episode over (truncated)")
        return "\n".join(lines) + "\n"


class CueRewardEnv(EpisodicEnv):
    """Single cue-reward episode (see the module docstring). Keyword arguments are those of CueRewardConfig."""

    config_class = CueRewardConfig
    batch_class = CueRewardBatch
    metadata = {
        "render_modes": ["human", "rgb_array", "ansi"], "render_fps": 4,
        "paper": "Miconi et al. 2019, Backpropamine (ICLR)",
        "tags": ["meta-rl", "association", "working-memory", "backpropamine2019"],
    }


class CueRewardVectorEnv(EpisodicVectorEnv):
    """``num_envs`` cue-reward episodes stepped with numpy array operations; same episodes as SyncVectorEnv."""

    env_class = CueRewardEnv
