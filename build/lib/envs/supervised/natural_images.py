"""Grayscale natural images for the 2018 reconstruction task: scikit-image's bundled photos or local CIFAR-10.

Every image is returned as (N, S, S) float32, each one centred (mean 0) and divided by its largest absolute
value, so pixels lie in [-1, 1] (as in the 2018 code).

- ``"skimage"``: photos shipped inside the scikit-image wheel (no download). Each is converted to gray,
  resized so that its shorter side is 2, 3, 4 and 6 times S, and cut into non-overlapping S x S patches; nearly
  flat patches are dropped. Split by photo: "test" uses ``SKIMAGE_TEST_IMAGES``, "train" the others.
- a path: a local CIFAR-10 copy. The binary version (preferred: no pickle at all) is a folder holding
  ``data_batch_1.bin..5.bin`` and ``test_batch.bin`` (or a ``cifar-10-batches-bin`` folder inside it) or the
  ``cifar-10-binary.tar.gz`` archive: each record is 1 label byte and 3072 pixel bytes. The python version is the
  ``cifar-10-python.tar.gz`` archive or a folder holding ``data_batch_1..5`` and ``test_batch`` (or a
  ``cifar-10-batches-py`` folder); its pickles are read by an unpickler that admits only plain data (dicts,
  lists, bytes, str, numbers and numpy arrays), so a crafted batch runs no code. Gray = channel mean; resized if
  S != 32. "train": the five data batches, "test": the test batch.
- an array (N, S, S) of grayscale images, used as given (then normalised).
"""

from __future__ import annotations

import functools
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from envs.checks import check_choice, check_int

SKIMAGE_TRAIN_IMAGES = ("astronaut", "camera", "chelsea", "coffee", "coins", "moon", "brick", "gravel")
SKIMAGE_TEST_IMAGES = ("rocket", "grass")
PATCH_SCALES = (2, 3, 4, 6)
MIN_PATCH_STD = 0.02  # patches flatter than this (pixels in [0, 1]) carry no picture
SPLITS = ("train", "test", "all")
CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_BATCHES = ("test_batch",)
CIFAR_RECORD = 1 + 3 * 32 * 32  # binary version: a label byte, then the pixels
# the only globals a CIFAR-10 python batch needs: numpy's array reconstruction
_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("builtins", "bytearray"),
}


class _DataUnpickler(pickle.Unpickler):
    """Admits plain data only: anything but numpy's array reconstruction (os.system, eval...) is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"it asks for {module}.{name}, which plain image data never needs")
        return super().find_class(module, name)


def normalise_images(images: np.ndarray) -> np.ndarray:
    """Centre each image and divide it by its largest absolute value: (N, S, S) -> float32 in [-1, 1]."""
    flat = images.reshape(len(images), -1).astype(np.float64)
    flat = flat - flat.mean(axis=1, keepdims=True)
    flat = flat / (1e-8 + np.abs(flat).max(axis=1, keepdims=True))
    return flat.reshape(images.shape).astype(np.float32)


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """float image (H, W) -> (height, width), antialiased bilinear."""
    pil = Image.fromarray(np.ascontiguousarray(image, dtype=np.float32))
    return np.asarray(pil.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)


def _skimage_gray(name: str) -> np.ndarray:
    """A bundled scikit-image photo as float gray (H, W) in [0, 1]."""
    import skimage.data
    from skimage.color import rgb2gray

    try:
        image = getattr(skimage.data, name)()
    except Exception as err:  # a missing bundled file would otherwise trigger a download attempt
        raise RuntimeError(f"scikit-image could not load its bundled image {name!r} offline: {err}") from err
    image = np.asarray(image)
    if image.ndim == 3:
        image = rgb2gray(image[..., :3])
    elif image.dtype == np.uint8:
        image = image / 255.0
    return np.asarray(image, dtype=np.float32)


def _patches(image: np.ndarray, size: int) -> np.ndarray:
    """Non-overlapping size x size tiles of ``image`` at every scale of PATCH_SCALES: (n, size, size)."""
    tiles = []
    for scale in PATCH_SCALES:
        factor = scale * size / min(image.shape)
        h, w = max(size, round(image.shape[0] * factor)), max(size, round(image.shape[1] * factor))
        resized = _resize(image, h, w)
        rows, cols = h // size, w // size
        grid = resized[: rows * size, : cols * size].reshape(rows, size, cols, size).swapaxes(1, 2)
        tiles.append(grid.reshape(-1, size, size))
    tiles = np.concatenate(tiles)
    return tiles[tiles.reshape(len(tiles), -1).std(axis=1) >= MIN_PATCH_STD]


@functools.lru_cache(maxsize=8)
def skimage_patches(image_size: int = 32, split: str = "train") -> np.ndarray:
    """Normalised S x S patches of the bundled scikit-image photos of ``split``: (N, S, S) float32 (read-only)."""
    image_size = check_int("image_size", image_size, minimum=2)
    check_choice("split", split, SPLITS)
    names = {"train": SKIMAGE_TRAIN_IMAGES, "test": SKIMAGE_TEST_IMAGES}.get(
        split, SKIMAGE_TRAIN_IMAGES + SKIMAGE_TEST_IMAGES
    )
    patches = normalise_images(np.concatenate([_patches(_skimage_gray(name), image_size) for name in names]))
    patches.setflags(write=False)
    return patches


def _binary_batch(data: bytes, where: str) -> dict:
    if len(data) == 0 or len(data) % CIFAR_RECORD:
        raise ValueError(f"corrupt CIFAR-10 batch {where}: {len(data)} bytes is not a whole number of "
                         f"{CIFAR_RECORD}-byte records (1 label byte + 3072 pixel bytes)")
    return {"data": np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR_RECORD)[:, 1:]}


def _binary_folder(path: Path) -> Path | None:
    for folder in (path / "cifar-10-batches-bin", path):
        if folder.is_dir() and (folder / "test_batch.bin").is_file():
            return folder
    return None


def _cifar_batches(path: Path, names: tuple[str, ...]) -> list[dict]:
    """CIFAR-10 batches ``names`` from a folder or a .tar.gz archive (binary version first)."""
    batches = []
    binary = _binary_folder(path) if path.is_dir() else None
    if binary is not None:
        for name in names:
            if not (binary / f"{name}.bin").is_file():
                raise FileNotFoundError(f"CIFAR-10 batch {binary / (name + '.bin')} not found")
        return [_binary_batch((binary / f"{name}.bin").read_bytes(), str(binary / f"{name}.bin")) for name in names]
    if path.is_file():
        try:
            with tarfile.open(path) as archive:
                members = {Path(m.name).name: m for m in archive.getmembers() if m.isfile()}
                binary_archive = all(f"{name}.bin" in members for name in names)
                for name in names:
                    if binary_archive:
                        data = archive.extractfile(members[f"{name}.bin"]).read()
                        batches.append(_binary_batch(data, f"{path}:{name}.bin"))
                        continue
                    if name not in members:
                        raise FileNotFoundError(f"CIFAR-10 archive {path} has no {name}")
                    batches.append(_unpickle(archive.extractfile(members[name]).read(), f"{path}:{name}"))
        except tarfile.TarError as err:
            raise ValueError(f"{path} is not a readable CIFAR-10 tar archive: {err}") from err
        return batches
    folder = path / "cifar-10-batches-py" if (path / "cifar-10-batches-py").is_dir() else path
    for name in names:
        if not (folder / name).is_file():
            raise FileNotFoundError(
                f"CIFAR-10 batch {folder / name} not found: expected the python version of CIFAR-10 (data_batch_1..5, "
                f"test_batch) in {folder}, or the cifar-10-python.tar.gz archive"
            )
    return [_unpickle((folder / name).read_bytes(), str(folder / name)) for name in names]


def _unpickle(data: bytes, where: str) -> dict:
    try:
        batch = _DataUnpickler(io.BytesIO(data), encoding="bytes").load()  # plain data only: no code runs
        pixels = np.asarray(batch[b"data"], dtype=np.uint8)
    except pickle.UnpicklingError as err:
        if "plain image data" in str(err):
            raise ValueError(f"refusing CIFAR-10 batch {where}: {err}; a data file never runs code. Use the binary "
                             "version of CIFAR-10 (*.bin) or a fresh copy") from None
        raise ValueError(f"corrupt CIFAR-10 batch {where}: {err}") from None
    except Exception as err:
        raise ValueError(f"corrupt CIFAR-10 batch {where}: {err}") from None
    if pixels.ndim != 2 or pixels.shape[1] != 3 * 32 * 32:
        raise ValueError(f"corrupt CIFAR-10 batch {where}: data has shape {pixels.shape}, expected (N, 3072)")
    return {"data": pixels}


@functools.lru_cache(maxsize=4)
def cifar10_gray(path: str, image_size: int = 32, split: str = "train") -> np.ndarray:
    """Normalised grayscale CIFAR-10 images of ``split`` from a local copy at ``path``: (N, S, S) float32."""
    image_size = check_int("image_size", image_size, minimum=2)
    check_choice("split", split, SPLITS)
    source = Path(path).expanduser()
    if not source.exists():
        raise FileNotFoundError(
            f"CIFAR-10 not found at {source}: give images='skimage' or the path of a local CIFAR-10 copy (python "
            f"version: the cifar-10-python.tar.gz archive or its extracted folder)"
        )
    all_batches = CIFAR_TRAIN_BATCHES + CIFAR_TEST_BATCHES
    names = {"train": CIFAR_TRAIN_BATCHES, "test": CIFAR_TEST_BATCHES}.get(split, all_batches)
    pixels = np.concatenate([batch["data"] for batch in _cifar_batches(source, names)])
    gray = pixels.reshape(-1, 3, 32, 32).mean(axis=1, dtype=np.float32) / 255.0
    if image_size != 32:
        gray = np.stack([_resize(image, image_size, image_size) for image in gray])
    images = normalise_images(gray)
    images.setflags(write=False)
    return images


def load_natural_images(
    images: str | os.PathLike | np.ndarray = "skimage", image_size: int = 32, split: str = "train"
) -> np.ndarray:
    """The image pool of the reconstruction task: (N, S, S) float32 in [-1, 1] (see the module docstring)."""
    image_size = check_int("image_size", image_size, minimum=2)
    check_choice("split", split, SPLITS)
    if isinstance(images, np.ndarray):
        if images.ndim != 3 or images.shape[1:] != (image_size, image_size) or len(images) == 0:
            raise ValueError(
                f"an image array must have shape (N, {image_size}, {image_size}) with N >= 1, got {images.shape}"
            )
        if not np.all(np.isfinite(images)):
            raise ValueError("the image array contains NaN or inf")
        return normalise_images(images)
    if isinstance(images, str) and images == "skimage":
        return skimage_patches(image_size, split)
    if isinstance(images, (str, os.PathLike)):
        return cifar10_gray(str(Path(images).expanduser().resolve()), image_size, split)
    raise TypeError(f"images must be 'skimage', a path to CIFAR-10 or an array, got {type(images).__name__}")
