"""Omniglot drawings, read straight from the archives (or folders) of the official layout, nothing downloaded.

Layout (the official ``images_background.zip`` / ``images_evaluation.zip``, the small archives, or their
extracted folders): ``<Alphabet>/<characterNN>/<id>_<drawer>.png`` at any depth. One class is one
(alphabet, character) pair; drawings with the same (alphabet, character, file name) found twice, e.g. in two
archives that share alphabets, are read once.

Where the data comes from, first match wins: the ``data_dir`` argument (a folder or a zip), the environment
variable ``PLASTIC_OMNIGLOT``, then the copy shipped inside the package, ``envs/supervised/omniglot/`` (two small
real archives, MIT-licensed, 2.9 MB: enough for tests, CI and a first run; see the README there).

Images are converted to float32 in [0, 1] with ink = 1 and background = 0, and downsampled (105 -> 31 by
default) with an antialiasing bilinear filter. Loaded sets are cached in memory per (path, size), and optionally
as a ``.npz`` file in ``cache_dir``.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from envs.checks import check_choice, check_int

OMNIGLOT_ENV_VAR = "PLASTIC_OMNIGLOT"
SPLITS = ("train", "test", "all")
_CACHE_VERSION = 1


def default_omniglot_dir() -> Path:
    """The small Omniglot copy shipped as package data: ``envs/supervised/omniglot/``."""
    return Path(__file__).resolve().parent / "omniglot"


def resolve_omniglot_path(data_dir: str | os.PathLike | None = None) -> Path:
    """Where to read Omniglot from (see the module docstring); raises ``FileNotFoundError`` naming where it looked."""
    if data_dir is not None:
        path, how = Path(data_dir).expanduser(), "from the data_dir argument"
    elif os.environ.get(OMNIGLOT_ENV_VAR):
        path, how = Path(os.environ[OMNIGLOT_ENV_VAR]).expanduser(), f"from ${OMNIGLOT_ENV_VAR}"
    else:
        path, how = default_omniglot_dir(), "the copy shipped with the package"
    if not path.exists():
        raise FileNotFoundError(
            f"Omniglot data not found: {path} ({how}) does not exist. Point to a folder or zip archive with the "
            f"Omniglot layout <Alphabet>/<character>/<drawing>.png (e.g. images_background.zip) with data_dir=... "
            f"(the --data option of the training script) or the {OMNIGLOT_ENV_VAR} environment variable."
        )
    return path.resolve()


@dataclass(frozen=True)
class OmniglotData:
    """All drawings, grouped by class: class c owns ``images[class_start[c] : class_start[c] + class_count[c]]``.

    ``images`` (N, S, S) float32 in [0, 1], ink 1; ``class_names`` the sorted (alphabet, character) pairs.
    """

    images: np.ndarray
    class_names: tuple[tuple[str, str], ...]
    class_start: np.ndarray
    class_count: np.ndarray
    source: str

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    def class_images(self, c: int) -> np.ndarray:
        """The drawings of class ``c``: (class_count[c], S, S)."""
        start = int(self.class_start[c])
        return self.images[start: start + int(self.class_count[c])]


def _decode(data: bytes, where: str, image_size: int) -> np.ndarray:
    """One PNG -> (S, S) float32 in [0, 1], ink 1; ``ValueError`` naming the file when it cannot be decoded."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image = image.convert("F")  # loads the pixels: corrupt or truncated files fail here
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise ValueError(f"corrupt or unreadable Omniglot image {where}: {err}") from err
    if image.size != (image_size, image_size):
        image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    return np.clip(1.0 - pixels, 0.0, 1.0)


def _is_drawing(parts: tuple[str, ...] | list[str]) -> bool:
    """A PNG at <Alphabet>/<character>/<file>.png, not a macOS resource fork."""
    return (
        len(parts) >= 3 and parts[-1].lower().endswith(".png") and not parts[-1].startswith("._")
        and "__MACOSX" not in parts
    )


def _read_zip(archive: Path, image_size: int, found: dict[tuple[str, str, str], np.ndarray]) -> None:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as err:
        raise ValueError(f"{archive} is not a readable zip archive: {err}") from err
    with zf:
        for name in sorted(zf.namelist()):
            parts = name.rstrip("/").split("/")
            if not _is_drawing(parts) or tuple(parts[-3:]) in found:
                continue
            try:
                data = zf.read(name)
            except (zipfile.BadZipFile, OSError, zlib.error, EOFError) as err:
                raise ValueError(f"corrupt Omniglot image {archive}:{name}: {err}") from err
            found[tuple(parts[-3:])] = _decode(data, f"{archive}:{name}", image_size)


def _read_drawings(path: Path, image_size: int) -> dict[tuple[str, str, str], np.ndarray]:
    """(alphabet, character, file name) -> image, from a zip or from the zips and PNGs inside a folder."""
    found: dict[tuple[str, str, str], np.ndarray] = {}
    if path.is_file():
        _read_zip(path, image_size, found)
    else:
        for archive in sorted(path.glob("*.zip")):
            _read_zip(archive, image_size, found)
        for png in sorted(path.rglob("*.png")):
            if _is_drawing(png.parts) and tuple(png.parts[-3:]) not in found:
                found[tuple(png.parts[-3:])] = _decode(png.read_bytes(), str(png), image_size)
    if not found:
        raise FileNotFoundError(
            f"no Omniglot drawings found in {path}: expected zip archives or folders holding "
            f"<Alphabet>/<character>/<drawing>.png"
        )
    return found


def _group(found: dict[tuple[str, str, str], np.ndarray], source: str) -> OmniglotData:
    keys = sorted(found)
    images = np.stack([found[key] for key in keys]).astype(np.float32, copy=False)
    class_of = [key[:2] for key in keys]
    class_names = tuple(sorted(set(class_of)))
    index = {name: c for c, name in enumerate(class_names)}
    labels = np.array([index[name] for name in class_of])
    class_count = np.bincount(labels, minlength=len(class_names))
    class_start = np.concatenate([[0], np.cumsum(class_count)[:-1]])
    images.setflags(write=False)
    return OmniglotData(images, class_names, class_start, class_count, source)


def _cache_file(cache_dir: Path, path: Path, image_size: int) -> Path:
    stat = path.stat()
    key = f"{_CACHE_VERSION}|{path}|{stat.st_size}|{stat.st_mtime_ns}|{image_size}"
    return cache_dir / f"omniglot_{image_size}px_{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"


@functools.lru_cache(maxsize=8)
def _load_cached(path: Path, image_size: int, cache_dir: Path | None) -> OmniglotData:
    cache_file = _cache_file(cache_dir, path, image_size) if cache_dir is not None else None
    if cache_file is not None and cache_file.exists():
        with np.load(cache_file) as npz:
            found = {tuple(key): image for key, image in zip(npz["keys"].tolist(), npz["images"], strict=True)}
        return _group(found, str(path))
    found = _read_drawings(path, image_size)
    if cache_file is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        keys = sorted(found)
        np.savez_compressed(cache_file, keys=np.array(keys), images=np.stack([found[k] for k in keys]))
    return _group(found, str(path))


def load_omniglot(
    data_dir: str | os.PathLike | None = None, image_size: int = 31, cache_dir: str | os.PathLike | None = None
) -> OmniglotData:
    """Load (once per process) every Omniglot drawing under ``data_dir``, downsampled to ``image_size``.

    Raises ``FileNotFoundError`` when the path is missing or holds no drawings, ``ValueError`` for a corrupt
    image or archive (naming it) or a bad size.
    """
    image_size = check_int("image_size", image_size, minimum=2)
    path = resolve_omniglot_path(data_dir)
    cache = Path(cache_dir).expanduser().resolve() if cache_dir is not None else None
    return _load_cached(path, image_size, cache)


def omniglot_split(n_classes: int, split: str, n_test_classes: int, split_seed: int | None = 0) -> np.ndarray:
    """Sorted class indices of ``split``: the last ``n_test_classes`` of a fixed order are held out ("test").

    The order is a permutation seeded by ``split_seed`` (as the 2018 code shuffles the characters once), or the
    sorted (alphabet, character) order when ``split_seed`` is None (whole alphabets held out). "all": every class.
    """
    check_choice("split", split, SPLITS)
    n_test_classes = check_int("n_test_classes", n_test_classes)
    if n_test_classes >= n_classes:
        raise ValueError(
            f"n_test_classes={n_test_classes} leaves no training class: the data has only {n_classes} classes"
        )
    order = np.arange(n_classes) if split_seed is None else np.random.default_rng(split_seed).permutation(n_classes)
    if split == "all":
        return np.arange(n_classes)
    chosen = order[-n_test_classes:] if split == "test" else order[:-n_test_classes]
    return np.sort(chosen)
