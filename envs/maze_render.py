"""Drawing the maze: pygame frames (rgb_array, human window) and text (ansi).

The functions take plain arrays (walls, cells as (row, col)), not an env, so that analysis scripts can draw an
agent's path and its reward hits on the same picture: ``draw_maze(surface, walls, agent, reward_cell, path=...,
hits=...)`` or ``maze_frame(...)`` for a ready HxWx3 uint8 array. Frames are drawn on an off-screen
``pygame.Surface``: no display is needed (set ``SDL_VIDEODRIVER=dummy`` for the human window on a headless
machine).
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402

CELL_PX = 32
STATUS_PX = 24

FREE_COLOUR = (236, 234, 226)
WALL_COLOUR = (52, 56, 68)
GRID_COLOUR = (214, 211, 200)
REWARD_COLOUR = (242, 186, 48)
REWARD_HIT_COLOUR = (46, 170, 80)
AGENT_COLOUR = (40, 104, 214)
BUMP_COLOUR = (214, 48, 48)
PATH_START_COLOUR = (150, 190, 250)
PATH_END_COLOUR = (20, 60, 160)
HIT_MARK_COLOUR = (200, 40, 140)
STATUS_BACKGROUND = (255, 255, 255)
TEXT_COLOUR = (20, 20, 20)

Cell = Sequence[int]  # (row, col)


@functools.lru_cache(maxsize=8)
def _font(size: int) -> pygame.font.Font:
    if not pygame.font.get_init():
        pygame.font.init()
    return pygame.font.Font(None, size)


def frame_size(maze_size: int, cell_px: int = CELL_PX, status: bool = True) -> tuple[int, int]:
    """(width, height) in pixels of a maze frame, with the status bar under the maze when ``status``."""
    side = maze_size * cell_px
    return side, side + (STATUS_PX if status else 0)


def _cell_rect(cell: Cell, cell_px: int) -> pygame.Rect:
    row, col = int(cell[0]), int(cell[1])
    return pygame.Rect(col * cell_px, row * cell_px, cell_px, cell_px)


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], w: float) -> tuple[int, int, int]:
    return tuple(round((1 - w) * x + w * y) for x, y in zip(a, b, strict=True))


def draw_maze(
    surface: pygame.Surface,
    walls: np.ndarray,
    agent: Cell | None,
    reward_cell: Cell | None,
    *,
    path: Sequence[Cell] | np.ndarray | None = None,
    hits: Iterable[Cell] | None = None,
    wall_bump: bool = False,
    reward_hit: bool = False,
    cell_px: int = CELL_PX,
) -> None:
    """Draw the maze on ``surface`` (top-left corner at (0, 0)).

    walls: (S, S) bool, True on walls. agent, reward_cell: (row, col) or None to leave out. The reward cell is
    drawn although the agent cannot see it. path: (N, 2) agent cells in time order, drawn as a line from light
    (early) to dark (late) blue; a jump between non-adjacent cells (a teleport) is not joined. hits: the cells
    where rewards were collected, each distinct cell ringed and labelled with its count. wall_bump rings the
    agent in red (it just walked into a wall); reward_hit paints the reward cell green (collected this step).
    """
    walls = np.asarray(walls, dtype=bool)
    if walls.ndim != 2 or walls.shape[0] != walls.shape[1]:
        raise ValueError(f"walls must be a square (S, S) array, got shape {walls.shape}")
    size = walls.shape[0]
    surface.fill(FREE_COLOUR, pygame.Rect(0, 0, size * cell_px, size * cell_px))
    for row, col in np.argwhere(walls):
        surface.fill(WALL_COLOUR, _cell_rect((row, col), cell_px))
    for k in range(size + 1):  # faint grid, drawn before the markers
        pygame.draw.line(surface, GRID_COLOUR, (k * cell_px, 0), (k * cell_px, size * cell_px - 1))
        pygame.draw.line(surface, GRID_COLOUR, (0, k * cell_px), (size * cell_px - 1, k * cell_px))

    if reward_cell is not None:
        rect = _cell_rect(reward_cell, cell_px).inflate(-4, -4)
        pygame.draw.rect(surface, REWARD_HIT_COLOUR if reward_hit else REWARD_COLOUR, rect, border_radius=4)

    if path is not None:
        _draw_path(surface, np.asarray(path, dtype=np.int64).reshape(-1, 2), cell_px)

    if hits is not None:
        font = _font(max(12, cell_px * 5 // 8))
        for cell, count in Counter((int(r), int(c)) for r, c in hits).items():
            rect = _cell_rect(cell, cell_px)
            pygame.draw.circle(surface, STATUS_BACKGROUND, rect.center, cell_px // 2 - 1)
            pygame.draw.circle(surface, HIT_MARK_COLOUR, rect.center, cell_px // 2 - 1, width=3)
            label = font.render(str(count), True, HIT_MARK_COLOUR)
            surface.blit(label, label.get_rect(center=rect.center))

    if agent is not None:
        centre = _cell_rect(agent, cell_px).center
        pygame.draw.circle(surface, AGENT_COLOUR, centre, cell_px * 3 // 8)
        if wall_bump:
            pygame.draw.circle(surface, BUMP_COLOUR, centre, cell_px // 2 - 2, width=3)


def _draw_path(surface: pygame.Surface, path: np.ndarray, cell_px: int) -> None:
    """Line segments between consecutive adjacent cells of ``path`` (N, 2), coloured by time."""
    n = len(path)
    centres = path[:, ::-1] * cell_px + cell_px // 2  # (x, y) pixel centres
    for k in range(n - 1):
        if np.abs(path[k + 1] - path[k]).sum() != 1:  # a teleport, or a step into a wall (no move)
            continue
        colour = _mix(PATH_START_COLOUR, PATH_END_COLOUR, k / max(n - 2, 1))
        pygame.draw.line(surface, colour, centres[k], centres[k + 1], width=max(2, cell_px // 8))


def draw_status(surface: pygame.Surface, text: str, top: int) -> None:
    """One line of text on a white bar from pixel row ``top`` to the bottom of ``surface``."""
    bar = pygame.Rect(0, top, surface.get_width(), surface.get_height() - top)
    surface.fill(STATUS_BACKGROUND, bar)
    label = _font(STATUS_PX - 4).render(text, True, TEXT_COLOUR)
    surface.blit(label, label.get_rect(midleft=(6, bar.centery)))


def maze_surface(
    walls: np.ndarray,
    agent: Cell | None,
    reward_cell: Cell | None,
    *,
    status: str | None = None,
    cell_px: int = CELL_PX,
    **overlays: object,
) -> pygame.Surface:
    """A new surface with the maze (see ``draw_maze`` for ``overlays``) and, if given, a status line under it."""
    size = np.shape(walls)[0]
    surface = pygame.Surface(frame_size(size, cell_px, status is not None))
    draw_maze(surface, walls, agent, reward_cell, cell_px=cell_px, **overlays)
    if status is not None:
        draw_status(surface, status, top=size * cell_px)
    return surface


def surface_to_rgb(surface: pygame.Surface) -> np.ndarray:
    """Pixels of ``surface`` as a new (H, W, 3) uint8 array."""
    return np.ascontiguousarray(np.transpose(pygame.surfarray.array3d(surface), (1, 0, 2)))


def maze_frame(
    walls: np.ndarray,
    agent: Cell | None,
    reward_cell: Cell | None,
    *,
    status: str | None = None,
    cell_px: int = CELL_PX,
    **overlays: object,
) -> np.ndarray:
    """The maze as an (H, W, 3) uint8 image; arguments as ``maze_surface``."""
    return surface_to_rgb(maze_surface(walls, agent, reward_cell, status=status, cell_px=cell_px, **overlays))


def maze_ansi(walls: np.ndarray, agent: Cell | None, reward_cell: Cell | None, status: str | None = None) -> str:
    """Text picture: '#' wall, '.' free, 'A' agent, 'R' the (hidden) reward cell; the status line first."""
    grid = np.where(np.asarray(walls, dtype=bool), "#", ".")
    if reward_cell is not None:
        grid[int(reward_cell[0]), int(reward_cell[1])] = "R"
    if agent is not None:
        grid[int(agent[0]), int(agent[1])] = "A"
    lines = ["".join(row) for row in grid]
    if status is not None:
        lines.insert(0, status)
    return "\n".join(lines) + "\n"


class PygameWindow:
    """A window that shows surfaces at a fixed frame rate (render_mode "human")."""

    def __init__(self, title: str, fps: float) -> None:
        self.title = title
        self.fps = fps
        self._screen: pygame.Surface | None = None
        self._clock: pygame.time.Clock | None = None

    def show(self, surface: pygame.Surface) -> None:
        if self._screen is None or self._screen.get_size() != surface.get_size():
            pygame.display.init()
            pygame.display.set_caption(self.title)
            self._screen = pygame.display.set_mode(surface.get_size())
            self._clock = pygame.time.Clock()
        self._screen.blit(surface, (0, 0))
        pygame.event.pump()
        pygame.display.flip()
        self._clock.tick(self.fps)

    def close(self) -> None:
        if self._screen is not None:
            pygame.display.quit()
            self._screen = None
            self._clock = None
