"""Drawing the maze: pygame frames (rgb_array, human window) and text (ansi).

The functions take plain arrays (walls, cells as (row, col)), not an env, so that analysis scripts can draw an
agent's path and its reward hits on the same picture: ``draw_maze(surface, walls, agent, reward_cell, path=...,
hits=...)`` or ``maze_frame(...)`` for a ready HxWx3 uint8 array; ``legend=True`` adds a key to the symbols
under the status line. Frames are drawn on an off-screen ``pygame.Surface``: no display is needed (set
``SDL_VIDEODRIVER=dummy`` for the human window on a headless machine).

The text helpers at the end (``font``, ``draw_text``, ``text_width``, ``rgb_to_surface``, ``swatch_legend``) are
shared with the labelled rgb_array frames of the other RL envs (cue-reward, reversal bandit).
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
LEGEND_FONT = 18  # pixel size of the legend's text (pygame's default font)
LEGEND_ROW_PX = 20
LEGEND_PAD = 6
LEGEND_ICON_PX = 14
LEGEND_GAP = 16  # between two items on one row

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
LEGEND_BACKGROUND = (246, 245, 240)

# Legend items: key -> text. ``legend=True`` shows agent, reward, collected, bump, plus path / hits when drawn.
LEGEND_TEXT = {
    "agent": "agent",
    "reward": "reward cell (hidden from the agent)",
    "collected": "reward collected, agent teleported",
    "bump": "walked into a wall",
    "path": "path, early to late",
    "hits": "rewards collected here",
}
ENV_LEGEND = ("agent", "reward", "collected", "bump")

Cell = Sequence[int]  # (row, col)


@functools.lru_cache(maxsize=8)
def font(size: int) -> pygame.font.Font:
    """pygame's bundled default font at pixel ``size`` (works headless; no display needed)."""
    if not pygame.font.get_init():
        pygame.font.init()
    return pygame.font.Font(None, size)



def legend_keys(legend: bool | Sequence[str], path: bool = False, hits: bool = False) -> tuple[str, ...]:
    """The legend items: ``legend`` itself when it is a sequence of keys of LEGEND_TEXT, ENV_LEGEND (and path,
    hits when drawn) when True, none when False."""
    if legend is True:
        return ENV_LEGEND + (("path",) if path else ()) + (("hits",) if hits else ())
    if legend is False:
        return ()
    keys = tuple(legend)
    unknown = [k for k in keys if k not in LEGEND_TEXT]
    if unknown:
        raise ValueError(f"unknown legend items {unknown}; known: {', '.join(LEGEND_TEXT)}")
    return keys


def _legend_layout(keys: Sequence[str], width: int) -> tuple[list[tuple[str, int, int]], int, int]:
    """Items flowed into rows: ([(key, x, y) relative to the legend's top-left], height, minimum width)."""
    widths = [LEGEND_ICON_PX + 5 + text_width(LEGEND_TEXT[k], LEGEND_FONT) for k in keys]
    width = max([width] + [w + 2 * LEGEND_PAD for w in widths])
    placed, x, y = [], LEGEND_PAD, LEGEND_PAD
    for key, w in zip(keys, widths, strict=True):
        if x > LEGEND_PAD and x + w > width - LEGEND_PAD:
            x, y = LEGEND_PAD, y + LEGEND_ROW_PX
        placed.append((key, x, y))
        x += w + LEGEND_GAP
    height = y + LEGEND_ROW_PX + LEGEND_PAD - 4 if keys else 0
    return placed, height, width


def frame_size(
    maze_size: int, cell_px: int = CELL_PX, status: bool = True, legend: Sequence[str] = ()
) -> tuple[int, int]:
    """(width, height) in pixels of a maze frame, with the status bar under the maze when ``status`` and the
    legend items ``legend`` (keys of LEGEND_TEXT, see ``legend_keys``) under that. A legend wider than the maze
    widens the frame (the maze stays at the top left)."""
    side = maze_size * cell_px
    _, legend_height, width = _legend_layout(tuple(legend), side)
    return width, side + (STATUS_PX if status else 0) + legend_height


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
        hit_font = font(max(12, cell_px * 5 // 8))
        for cell, count in Counter((int(r), int(c)) for r, c in hits).items():
            rect = _cell_rect(cell, cell_px)
            pygame.draw.circle(surface, STATUS_BACKGROUND, rect.center, cell_px // 2 - 1)
            pygame.draw.circle(surface, HIT_MARK_COLOUR, rect.center, cell_px // 2 - 1, width=3)
            label = hit_font.render(str(count), True, HIT_MARK_COLOUR)
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


def draw_status(surface: pygame.Surface, text: str, top: int, height: int | None = None) -> None:
    """One line of text on a white bar from pixel row ``top``, ``height`` rows tall (default: to the bottom)."""
    bar = pygame.Rect(0, top, surface.get_width(), surface.get_height() - top if height is None else height)
    surface.fill(STATUS_BACKGROUND, bar)
    label = font(STATUS_PX - 4).render(text, True, TEXT_COLOUR)
    surface.blit(label, label.get_rect(midleft=(6, bar.centery)))


def _draw_legend_icon(surface: pygame.Surface, key: str, rect: pygame.Rect) -> None:
    if key == "agent":
        pygame.draw.circle(surface, AGENT_COLOUR, rect.center, rect.width * 3 // 8 + 1)
    elif key in ("reward", "collected"):
        colour = REWARD_COLOUR if key == "reward" else REWARD_HIT_COLOUR
        pygame.draw.rect(surface, colour, rect, border_radius=3)
    elif key == "bump":
        pygame.draw.circle(surface, AGENT_COLOUR, rect.center, rect.width // 4)
        pygame.draw.circle(surface, BUMP_COLOUR, rect.center, rect.width // 2, width=2)
    elif key == "path":
        for k in range(rect.width):
            colour = _mix(PATH_START_COLOUR, PATH_END_COLOUR, k / max(rect.width - 1, 1))
            surface.fill(colour, pygame.Rect(rect.left + k, rect.centery - 2, 1, 4))
    elif key == "hits":
        pygame.draw.circle(surface, STATUS_BACKGROUND, rect.center, rect.width // 2)
        pygame.draw.circle(surface, HIT_MARK_COLOUR, rect.center, rect.width // 2, width=2)
        label = font(12).render("n", True, HIT_MARK_COLOUR)
        surface.blit(label, label.get_rect(center=rect.center))


def draw_legend(surface: pygame.Surface, keys: Sequence[str], top: int) -> None:
    """The legend items ``keys`` (icon + text, flowed into rows) from pixel row ``top`` to the bottom."""
    area = pygame.Rect(0, top, surface.get_width(), surface.get_height() - top)
    surface.fill(LEGEND_BACKGROUND, area)
    pygame.draw.line(surface, GRID_COLOUR, (0, top), (surface.get_width() - 1, top))
    placed, _, _ = _legend_layout(tuple(keys), surface.get_width())
    for key, x, y in placed:
        icon = pygame.Rect(x, top + y + (LEGEND_ROW_PX - LEGEND_ICON_PX) // 2 - 1, LEGEND_ICON_PX, LEGEND_ICON_PX)
        _draw_legend_icon(surface, key, icon)
        text = LEGEND_TEXT[key]
        if key == "hits":
            text = "n " + text
        draw_text(surface, text, (icon.right + 5, top + y + LEGEND_ROW_PX // 2 - 1), TEXT_COLOUR, LEGEND_FONT,
                  anchor="midleft")


def maze_surface(
    walls: np.ndarray,
    agent: Cell | None,
    reward_cell: Cell | None,
    *,
    status: str | None = None,
    cell_px: int = CELL_PX,
    legend: bool | Sequence[str] = False,
    **overlays: object,
) -> pygame.Surface:
    """A new surface with the maze (see ``draw_maze`` for ``overlays``), if given a status line under it, and
    under that the legend (``legend``: True for the symbols drawn, or keys of LEGEND_TEXT; see ``legend_keys``)."""
    size = np.shape(walls)[0]
    keys = legend_keys(legend, overlays.get("path") is not None, overlays.get("hits") is not None)
    surface = pygame.Surface(frame_size(size, cell_px, status is not None, keys))
    side = size * cell_px
    if surface.get_width() > side:  # a legend wider than the maze: blank the strip right of it
        surface.fill(LEGEND_BACKGROUND, pygame.Rect(side, 0, surface.get_width() - side, side))
    draw_maze(surface, walls, agent, reward_cell, cell_px=cell_px, **overlays)
    if status is not None:
        draw_status(surface, status, top=side, height=STATUS_PX)
    if keys:
        draw_legend(surface, keys, top=side + (STATUS_PX if status is not None else 0))
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
    legend: bool | Sequence[str] = False,
    **overlays: object,
) -> np.ndarray:
    """The maze as an (H, W, 3) uint8 image; arguments as ``maze_surface``."""
    return surface_to_rgb(
        maze_surface(walls, agent, reward_cell, status=status, cell_px=cell_px, legend=legend, **overlays)
    )


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


# --- text helpers (also used by the cue-reward and bandit frames) ---------------------------------------------------
def text_width(text: str, size: int) -> int:
    """Width in pixels of ``text`` in the default font at ``size``."""
    return font(size).size(text)[0]


def draw_text(
    surface: pygame.Surface,
    text: str,
    position: tuple[int, int],
    colour: tuple[int, int, int],
    size: int,
    anchor: str = "topleft",
) -> pygame.Rect:
    """Draw ``text`` (antialiased, default font at ``size``) with its ``anchor`` point (a pygame.Rect attribute:
    topleft, midleft, center, ...) at ``position``; returns the rectangle drawn."""
    label = font(size).render(text, True, colour)
    rect = label.get_rect(**{anchor: position})
    surface.blit(label, rect)
    return rect


def rgb_to_surface(rgb: np.ndarray) -> pygame.Surface:
    """A new surface holding the (H, W, 3) uint8 image ``rgb`` (the inverse of ``surface_to_rgb``)."""
    return pygame.surfarray.make_surface(np.ascontiguousarray(np.transpose(rgb, (1, 0, 2))))


def swatch_legend(
    surface: pygame.Surface,
    items: Sequence[tuple[tuple[int, int, int], str]],
    position: tuple[int, int],
    colour: tuple[int, int, int],
    size: int,
) -> int:
    """One row of colour swatches, each followed by its text, from ``position`` (the row's top left); returns the
    x just past the last item."""
    x, y = position
    height = font(size).get_linesize()
    for swatch, text in items:
        surface.fill(swatch, pygame.Rect(x, y + (height - 10) // 2, 10, 10))
        x = draw_text(surface, text, (x + 14, y), colour, size).right + 12
    return x
