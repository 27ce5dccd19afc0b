"""Reversal bandit (after Wang et al. 2016): k Bernoulli arms whose best arm changes within the episode.

## Description
Each episode draws the arm probabilities (by default p and 1 - p with p uniform in [0, 1]; or p from
``p_choices``; or the fixed ``probabilities``, assigned to the arms in a random order unless
``shuffle_arms=False``; with k > 2 arms the draws are independent per arm). Then the reversals: by default exactly
one, at a step drawn uniformly in [T // 4, 3T // 4] (at least step 1; none when T = 1), so that both phases last
at least a quarter of the episode; with ``hazard_rate=h`` instead, every step 1..T-1 is a reversal with
probability h (0 gives none). A reversal swaps the best arm's probability with that of a uniformly drawn other
arm (with 2 arms: the arms swap). A (T, k) table of uniforms, drawn at reset too, decides the Bernoulli rewards:
pulling arm a at step t pays 1 if u[t, a] < p_t[a]. Everything random in an episode is drawn at reset.

## Observation
``Box(5,)`` float32 at the defaults (``n_arms + 3`` inputs; the task itself has no input):

| index | input | range |
|---|---|---|
| 0 | bias | 1 |
| 1 | t / episode_length | [0, 1] |
| 2 | previous reward | {0, 1} |
| 3 .. n_arms+2 (3-4) | previous action one-hot (all 0 at t = 0) | {0, 1} |

Info (about the pull the next action makes, i.e. the step of the observation returned): "arm_probabilities"
(k,), "best_arm", "reversal" (the probabilities changed at this step). The final observation (t = T) repeats the
last probabilities. The reset info also carries "reversal_mask" (T,) bool: the steps where a reversal happens.

## Actions
``Discrete(n_arms)`` (``Discrete(2)`` by default): action a pulls arm a.

## Rewards
1 if the pulled arm pays (u[t, a] < p_t[a]), else 0.

## Episode end
Truncated after ``episode_length`` steps (100 by default); never terminated.

## Arguments
``n_arms`` (2; at least 2), ``episode_length`` (100), ``probabilities`` (None; or ``n_arms`` fixed
probabilities), ``p_choices`` (None; or a non-empty list of probabilities to draw p from; not with
``probabilities``), ``shuffle_arms`` (True: the fixed ``probabilities`` go to the arms in a random order),
``hazard_rate`` (None: exactly one reversal; or the per-step reversal probability, in [0, 1]).

## Registered ids
``Plastic/ReversalBandit-v0``: ``gym.make`` gives :class:`ReversalBanditEnv` (render modes human, rgb_array,
ansi); ``gym.make_vec(..., vectorization_mode="vector_entry_point")`` gives :class:`ReversalBanditVectorEnv`
(rgb_array, ansi), the same episodes as ``SyncVectorEnv`` over B ``ReversalBanditEnv``s seeded seed, seed + 1, ...

## Source paper
Wang, Kurth-Nelson, Tirumala, Soyer, Leibo, Munos, Blundell, Kumaran, Botvinick, "Learning to reinforcement
learn", arXiv:1611.05763, 2016; the reversal follows the reversal-learning task of Miconi, "Learning to learn
with backpropagation of Hebbian plasticity", arXiv:1609.02228, 2016 (TASKS.md section 2).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from envs.checks import check_int, check_probabilities
from envs.episodic import EpisodicEnv, EpisodicVectorEnv, MetaRLBatch


@dataclass(frozen=True)
class ReversalBanditConfig:
    """The task's settings, checked at construction (errors name the keyword argument)."""

    n_arms: int = 2
    episode_length: int = 100
    probabilities: Sequence[float] | None = None
    p_choices: Sequence[float] | None = None
    shuffle_arms: bool = True
    hazard_rate: float | None = None

    def __post_init__(self) -> None:
        check_int("n_arms", self.n_arms, 2)
        check_int("episode_length", self.episode_length, 1)
        if self.probabilities is not None and self.p_choices is not None:
            raise ValueError("give either probabilities (a fixed set) or p_choices (values to draw from), not both")
        if self.probabilities is not None:
            probs = check_probabilities("probabilities", self.probabilities)
            if probs.shape != (self.n_arms,):
                raise ValueError(f"probabilities must hold n_arms={self.n_arms} values, got shape {probs.shape}")
            object.__setattr__(self, "probabilities", tuple(probs.tolist()))
        if self.p_choices is not None:
            choices = check_probabilities("p_choices", self.p_choices)
            if choices.ndim != 1 or choices.size == 0:
                raise ValueError(f"p_choices must be a non-empty list of probabilities, got {self.p_choices!r}")
            object.__setattr__(self, "p_choices", tuple(choices.tolist()))
        if not isinstance(self.shuffle_arms, bool):
            raise TypeError(f"shuffle_arms must be a bool, got {self.shuffle_arms!r}")
        h = self.hazard_rate
        if h is not None and (
            isinstance(h, bool) or not isinstance(h, numbers.Real) or not 0.0 <= h <= 1.0  # also refuses NaN
        ):
            raise ValueError(f"hazard_rate must be None or a probability in [0, 1], got {h!r}")


def draw_initial_probabilities(rng: np.random.Generator, config: ReversalBanditConfig) -> np.ndarray:
    """Arm probabilities at the start of an episode, (k,) float64."""
    k = config.n_arms
    if config.probabilities is not None:
        probs = np.array(config.probabilities, dtype=np.float64)
        return rng.permutation(probs) if config.shuffle_arms else probs
    if k == 2:
        p = rng.choice(config.p_choices) if config.p_choices is not None else rng.random()
        return np.array([p, 1.0 - p], dtype=np.float64)
    return rng.choice(config.p_choices, size=k) if config.p_choices is not None else rng.random(k)


def draw_reversal_mask(rng: np.random.Generator, config: ReversalBanditConfig) -> np.ndarray:
    """(T,) bool: the steps at which the probabilities change (never step 0)."""
    T = config.episode_length
    mask = np.zeros(T, dtype=np.bool_)
    if config.hazard_rate is not None:
        mask[1:] = rng.random(T - 1) < config.hazard_rate
    elif T >= 2:
        low = max(1, T // 4)
        mask[rng.integers(low, max(low, (3 * T) // 4) + 1)] = True
    return mask


def draw_bandit_episode(rng: np.random.Generator, config: ReversalBanditConfig) -> dict[str, np.ndarray]:
    """All the randomness of one episode. probabilities (T + 1, k) (row T repeats row T - 1), uniforms (T, k)."""
    T, k = config.episode_length, config.n_arms
    probs = draw_initial_probabilities(rng, config)
    reversal_mask = draw_reversal_mask(rng, config)
    partners = rng.integers(1, k, size=T)  # offset from the best arm of the arm it swaps with
    uniforms = rng.random((T, k))
    table = np.empty((T + 1, k), dtype=np.float64)
    start = 0
    for step in np.flatnonzero(reversal_mask):
        table[start:step] = probs
        best = int(np.argmax(probs))
        other = (best + int(partners[step])) % k
        probs = probs.copy()
        probs[best], probs[other] = probs[other], probs[best]
        start = step
    table[start:] = probs
    return {"probabilities": table, "uniforms": uniforms, "reversal_mask": reversal_mask}


# Colours of the rgb_array frame.
_BG = (16, 16, 24)
_REWARD, _NO_REWARD = (60, 200, 90), (220, 60, 60)
_REVERSAL = (250, 200, 40)
_BAR = (150, 150, 170)
_CURSOR = (255, 255, 255)
_TEXT = (225, 225, 235)
# Its layout, in pixels (text: pygame's default font at these sizes).
_TEXT_PX, _SMALL_PX = 18, 16
_ROW_PX = 18  # one timeline row per arm
_BAR_SLOT = 36  # width of one arm's probability bar and its value
_MARGIN = 8
_TEXT_MIN_WIDTH = 480  # the text lines' room (wider than the picture for short episodes)


class ReversalBanditBatch(MetaRLBatch):
    """B bandit episodes in lock-step. Tables: probabilities (B, T + 1, k), uniforms (B, T + 1, k) (row T unused),
    reversal (B, T + 1) bool."""

    def __init__(self, config: ReversalBanditConfig, num_envs: int) -> None:
        super().__init__(num_envs, config.episode_length, bytes_per_step=17 + 17 * config.n_arms)
        self.config = config
        self.n_actions = config.n_arms
        T, k = config.episode_length, config.n_arms
        self.probabilities = np.zeros((num_envs, T + 1, k), dtype=np.float64)
        self.uniforms = np.ones((num_envs, T + 1, k), dtype=np.float64)
        self.reversal = np.zeros((num_envs, T + 1), dtype=np.bool_)

    def draw_episode(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return draw_bandit_episode(rng, self.config)

    def load_tables(self, index: int, episode: dict[str, np.ndarray]) -> None:
        T = self.episode_length
        self.probabilities[index] = episode["probabilities"]
        self.uniforms[index, :T] = episode["uniforms"]
        self.reversal[index, :T] = episode["reversal_mask"]

    def observation_space(self) -> gym.spaces.Box:
        # All inputs lie in [0, 1]; the bias (always 1) gets [0, 1] too: Gymnasium warns when a low equals its high.
        low = np.zeros(3 + self.n_actions, dtype=np.float32)
        high = np.ones(3 + self.n_actions, dtype=np.float32)
        return gym.spaces.Box(low, high, dtype=np.float32)

    def write_task_inputs(self, out: np.ndarray) -> None:
        return  # the bandit has no task inputs (never called)

    def play(self, actions: np.ndarray) -> np.ndarray:
        u = self.uniforms[self.rows, self.t, actions]
        return (u < self.probabilities[self.rows, self.t, actions]).astype(np.float64)

    def step_infos(self) -> dict[str, np.ndarray]:
        probs = self.probabilities[self.rows, self.t]
        reversal = self.reversal[self.rows, self.t]
        return {"arm_probabilities": probs, "best_arm": np.argmax(probs, axis=1), "reversal": reversal}

    def episode_info(self, episode: dict[str, np.ndarray]) -> dict[str, Any]:
        return {"reversal_mask": episode["reversal_mask"].copy()}

    # --- rendering -----------------------------------------------------------------------------------------------
    def render_rgb(self, index: int) -> np.ndarray:
        """The episode so far, labelled. Top: pulls made and reward so far. Middle left: the pull timeline, one row
        per arm ("arm a"), one column per step: background brightness = the arm's probability, green/red = pulled
        and rewarded/not, yellow ticks (labelled with their step) at reversals, a white tick at the current step.
        Middle right: bars of the current probabilities, each with its value, the last pulled arm outlined in the
        colour of its reward. Bottom: one line per arm (probability, pulls, rewards, the last pull), the reversal
        steps, and a key to the colours. The shape depends only on n_arms and episode_length."""
        from envs import maze_render as draw

        T, k = self.episode_length, self.n_actions
        t = int(self.t[index])
        now = min(t, T - 1)
        seen = np.arange(T) <= now
        probs = self.probabilities[index, :T]  # (T, k)
        shade = (40 + 120 * probs.T[..., None]).astype(np.uint8) * np.ones(3, dtype=np.uint8)  # (k, T, 3)
        cell = np.where(seen[None, :, None], shade, np.array(_BG, dtype=np.uint8))
        pulled = self.actions[index, :T]
        played = np.flatnonzero(np.arange(T) < t)
        won = self.rewards_seen[index, played] > 0
        cell[pulled[played], played] = np.where(won[:, None], _REWARD, _NO_REWARD)
        marks = np.zeros((2, T, 3), dtype=np.uint8)
        marks[:] = _BG
        reversals = np.flatnonzero(seen & self.reversal[index, :T])
        marks[0, reversals] = _REVERSAL
        marks[1, now] = _CURSOR
        width = max(1, min(4, 1200 // T))
        heights = np.array([_ROW_PX] * k + [4, 4])
        timeline = np.repeat(np.repeat(np.concatenate([cell, marks]), heights, axis=0), width, axis=1)

        top = _ROW_PX * k
        bars = np.zeros((top, _BAR_SLOT * k, 3), dtype=np.uint8)
        bars[:] = _BG
        for a in range(k):
            x = _BAR_SLOT * a + (_BAR_SLOT - 16) // 2
            if t > 0 and pulled[t - 1] == a:
                bars[:top, x - 2 : x + 18] = _REWARD if self.rewards_seen[index, t - 1] > 0 else _NO_REWARD
                bars[2 : top - 2, x : x + 16] = _BG
            height = int(round(self.probabilities[index, now, a] * (top - 4)))
            bars[top - 2 - height : top - 2, x : x + 16] = _BAR

        # Layout: header | labels, timeline, gap, bars | tick labels, bar values | text lines | colour key.
        line = draw.font(_TEXT_PX).get_linesize() + 3
        small = draw.font(_SMALL_PX).get_linesize()
        label_w = draw.text_width(f"arm {k - 1}", _TEXT_PX) + 8
        x_timeline = _MARGIN + label_w
        header_w = draw.text_width(f"pull {T}/{T}    total reward {T}", _TEXT_PX) + 16  # room for any header
        x_bars = max(x_timeline + timeline.shape[1] + 12, _MARGIN + header_w)
        y_picture = _MARGIN + line + 2
        y_ticks = y_picture + timeline.shape[0] + 1
        y_text = y_ticks + small + 6
        frame_w = max(x_bars + bars.shape[1] + _MARGIN, _TEXT_MIN_WIDTH)
        frame_h = y_text + line * (k + 2) + _MARGIN
        surface = draw.pygame.Surface((frame_w, frame_h))
        surface.fill(_BG)
        surface.blit(draw.rgb_to_surface(timeline), (x_timeline, y_picture))
        surface.blit(draw.rgb_to_surface(bars), (x_bars, y_picture))

        rewards = self.rewards_seen[index, :t]
        draw.draw_text(surface, f"pull {t}/{T}    total reward {rewards.sum():.0f}", (_MARGIN, _MARGIN), _TEXT,
                       _TEXT_PX)
        draw.draw_text(surface, "p now", (x_bars + bars.shape[1] // 2, _MARGIN), _TEXT, _SMALL_PX, anchor="midtop")
        for a in range(k):
            draw.draw_text(surface, f"arm {a}", (_MARGIN, y_picture + _ROW_PX * a + _ROW_PX // 2), _TEXT, _TEXT_PX,
                           anchor="midleft")
            draw.draw_text(surface, f"{self.probabilities[index, now, a]:.2f}",
                           (x_bars + _BAR_SLOT * a + _BAR_SLOT // 2, y_ticks), _TEXT, _SMALL_PX, anchor="midtop")
        right = x_timeline - 1
        for step in reversals:  # tick labels, left to right, skipping those that would overlap
            label_x = x_timeline + int(step) * width + width // 2
            if label_x - draw.text_width(str(step), _SMALL_PX) // 2 > right + 3:
                right = draw.draw_text(surface, str(step), (label_x, y_ticks), _REVERSAL, _SMALL_PX,
                                       anchor="midtop").right

        best = int(np.argmax(self.probabilities[index, now]))
        y = y_text
        for a in range(k):
            mine = pulled[:t] == a
            text = (f"arm {a}  p = {self.probabilities[index, now, a]:.2f}{' (best)' if a == best else ''}"
                    f"    pulls {int(mine.sum())}    rewards {int(rewards[mine].sum())}")
            x_end = draw.draw_text(surface, text, (_MARGIN, y), _TEXT, _TEXT_PX).right
            if t > 0 and pulled[t - 1] == a:
                last_reward = rewards[-1] > 0
                draw.draw_text(surface, f"<- last pull: reward {rewards[-1]:.0f}", (x_end + 12, y),
                               _REWARD if last_reward else _NO_REWARD, _TEXT_PX)
            y += line
        if reversals.size:
            steps = ", ".join(str(s) for s in reversals[:8]) + (", ..." if reversals.size > 8 else "")
            plural = "s" if reversals.size > 1 else ""
            text = f"reversal{plural} (the best arm changes) at step{plural} {steps}"
        else:
            text = "no reversal yet (the best arm has not changed)"
        draw.draw_text(surface, text, (_MARGIN, y), _REVERSAL if reversals.size else _TEXT, _TEXT_PX)
        key = [(_REWARD, "pulled, reward 1"), (_NO_REWARD, "pulled, reward 0"), (_REVERSAL, "reversal"),
               (_CURSOR, "now"), ((100, 100, 100), "brightness = p")]
        draw.swatch_legend(surface, key, (_MARGIN, y + line), _TEXT, _SMALL_PX)
        return draw.surface_to_rgb(surface)

    def render_ansi(self, index: int) -> str:
        T, k = self.episode_length, self.n_actions
        t = int(self.t[index])
        now = min(t, T - 1)
        reversals = np.flatnonzero(self.reversal[index, : now + 1])
        lines = [f"ReversalBandit pull {t}/{T}  reversals so far: {reversals.size} at steps {reversals.tolist()}"]
        pulled, rewards = self.actions[index, :t], self.rewards_seen[index, :t]
        best = int(np.argmax(self.probabilities[index, now]))
        for a in range(k):
            n_pulls, n_wins = int(np.sum(pulled == a)), int(np.sum(rewards[pulled == a]))
            line = f"  arm {a}: p={self.probabilities[index, now, a]:.2f}{' (best)' if a == best else '       '}"
            line += f"  pulls {n_pulls:3d}  rewards {n_wins:3d}"
            if t > 0 and pulled[-1] == a:
                line += f"  <- last pull, reward {rewards[-1]:.0f}"
            lines.append(line)
        if t >= T:
            lines.append(f"  episode over (truncated): total reward {rewards.sum():.0f}")
        return "\n".join(lines) + "\n"


class ReversalBanditEnv(EpisodicEnv):
    """Single reversal-bandit episode (see the module docstring)."""

    config_class = ReversalBanditConfig
    batch_class = ReversalBanditBatch
    metadata = {
        "render_modes": ["human", "rgb_array", "ansi"], "render_fps": 4,
        "paper": "Wang et al. 2016, Learning to reinforcement learn (arXiv:1611.05763)",
        "tags": ["meta-rl", "bandit", "reversal"],
    }


class ReversalBanditVectorEnv(EpisodicVectorEnv):
    """``num_envs`` bandit episodes stepped with numpy array operations; same episodes as SyncVectorEnv."""

    env_class = ReversalBanditEnv
