"""Data of the supervised tasks: Omniglot from the real shared zips (and user folders), natural images, errors."""

from __future__ import annotations

import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from envs.supervised.continual_omniglot import ContinualOmniglotTask
from envs.supervised.data import (
    OMNIGLOT_ENV_VAR,
    _load_cached,
    default_omniglot_dir,
    load_omniglot,
    omniglot_split,
    resolve_omniglot_path,
)
from envs.supervised.image_reconstruction import ImageReconstructionTask
from envs.supervised.natural_images import (
    SKIMAGE_TEST_IMAGES,
    SKIMAGE_TRAIN_IMAGES,
    cifar10_gray,
    load_natural_images,
    skimage_patches,
)
from envs.supervised.omniglot_one_shot import OmniglotOneShotTask

SHARED = default_omniglot_dir()
SMALL1 = SHARED / "images_background_small1.zip"
SMALL2 = SHARED / "images_background_small2.zip"
ALPHABETS = {"Balinese", "Early_Aramaic", "Greek", "Japanese_(katakana)", "Korean", "Latin", "Sanskrit", "Tagalog"}


@pytest.fixture(scope="module")
def omniglot():
    return load_omniglot()


def _png_bytes(zip_path: Path, member_suffix: str) -> bytes:
    with zipfile.ZipFile(zip_path) as zf:
        name = next(n for n in zf.namelist() if n.endswith(member_suffix))
        return zf.read(name)


def _write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


# -- Omniglot from the real archives ----------------------------------------------------------------------------
def test_default_path_is_the_shared_copy():
    assert resolve_omniglot_path() == SHARED.resolve()
    assert SMALL1.is_file() and SMALL2.is_file()


def test_shared_omniglot_classes_images_and_dtype(omniglot):
    # Greek and Latin sit in both archives with identical files: read once -> 136 + 156 - 50 = 242 classes
    assert omniglot.n_classes == 242
    assert set(omniglot.class_count.tolist()) == {20}
    assert omniglot.images.shape == (242 * 20, 31, 31)
    assert omniglot.images.dtype == np.float32
    assert omniglot.images.min() >= 0.0 and omniglot.images.max() <= 1.0
    # ink = 1 on a 0 background: strokes are a small minority of the pixels, every drawing has some
    assert 0.02 < omniglot.images.mean() < 0.3
    assert np.all(omniglot.images.reshape(len(omniglot.images), -1).max(axis=1) > 0.5)
    assert {alphabet for alphabet, _ in omniglot.class_names} == ALPHABETS
    assert len(set(omniglot.class_names)) == omniglot.n_classes
    c = omniglot.class_names.index(("Latin", "character01"))
    assert omniglot.class_images(c).shape == (20, 31, 31)


def test_single_archive_and_image_size():
    one = load_omniglot(SMALL1, image_size=28)
    assert one.n_classes == 136
    assert one.images.shape == (136 * 20, 28, 28)
    two = load_omniglot(SMALL2)
    assert two.n_classes == 156


def test_drawing_matches_its_png(omniglot, tmp_path):
    """A drawing read at full size is 1 - pixel / 255 (ink = 1); downsampled, it stays where it was."""
    png = _png_bytes(SMALL1, "Balinese/character01/0108_01.png")
    raw = Image.open(io.BytesIO(png))
    assert raw.size == (105, 105)
    pixels = np.asarray(raw.convert("F"), dtype=np.float32) / 255.0
    full = load_omniglot(_write_zip(tmp_path / "one.zip", {"Balinese/character01/0108_01.png": png}), image_size=105)
    np.testing.assert_allclose(full.images[0], 1.0 - pixels, atol=1e-6)
    stored = omniglot.class_images(omniglot.class_names.index(("Balinese", "character01")))[0]
    # downsampling keeps the drawing where it was: the ink centre of mass moves by < 1 small pixel
    def centre(img):
        ys, xs = np.mgrid[: img.shape[0], : img.shape[1]]
        return np.array([(ys * img).sum(), (xs * img).sum()]) / img.sum() / img.shape[0]
    np.testing.assert_allclose(centre(stored), centre(1.0 - pixels), atol=1 / 31)


def test_split_is_disjoint_fixed_and_complete(omniglot):
    n = omniglot.n_classes
    train, test = omniglot_split(n, "train", 100), omniglot_split(n, "test", 100)
    assert len(train) == n - 100 and len(test) == 100
    assert not set(train.tolist()) & set(test.tolist())
    assert sorted(train.tolist() + test.tolist()) == list(range(n))
    np.testing.assert_array_equal(test, omniglot_split(n, "test", 100))  # deterministic
    assert not np.array_equal(test, omniglot_split(n, "test", 100, split_seed=1))
    np.testing.assert_array_equal(omniglot_split(n, "test", 30, split_seed=None), np.arange(n - 30, n))
    np.testing.assert_array_equal(omniglot_split(n, "all", 30), np.arange(n))


def test_held_out_episodes_use_only_held_out_classes(omniglot):
    test_classes = set(omniglot_split(omniglot.n_classes, "test", 100).tolist())
    task = OmniglotOneShotTask(split="test", rotate=False)
    lookup = {omniglot.images[i].tobytes(): c for c in range(omniglot.n_classes) for i in
              range(omniglot.class_start[c], omniglot.class_start[c] + omniglot.class_count[c])}
    seen = set()
    for seed in range(20):
        episode = task.draw(np.random.default_rng(seed))
        for image in episode.inputs[:, : task.n_pixels]:
            seen.add(lookup[image.reshape(31, 31).tobytes()])
    assert seen <= test_classes and len(seen) > 20


def test_extracted_folder_and_env_var(tmp_path, monkeypatch):
    """A user folder with the same layout (PNG files, no zip) is read, also through $PLASTIC_OMNIGLOT."""
    with zipfile.ZipFile(SMALL2) as zf:
        members = [n for n in zf.namelist() if "/Tagalog/character0" in n and n.endswith(".png")]
        zf.extractall(tmp_path, members)
    data = load_omniglot(tmp_path, image_size=16)
    assert data.n_classes == 9 and set(data.class_count.tolist()) == {20}
    assert {alphabet for alphabet, _ in data.class_names} == {"Tagalog"}
    monkeypatch.setenv(OMNIGLOT_ENV_VAR, str(tmp_path))
    assert resolve_omniglot_path() == tmp_path.resolve()
    task = OmniglotOneShotTask(image_size=16, n_test_classes=3)  # 6 train classes from the env-var folder
    assert task.pool.data.n_classes == 9 and len(task.pool.classes) == 6


def test_npz_cache_round_trip(tmp_path):
    archive = _write_zip(tmp_path / "tiny.zip", {
        f"tiny/Latin/character0{c}/x_{d:02d}.png": _png_bytes(SMALL1, f"Latin/character0{c}/0{682 + c}_{d:02d}.png")
        for c in (1, 2) for d in (1, 2, 3)
    })
    cache = tmp_path / "cache"
    first = load_omniglot(archive, image_size=20, cache_dir=cache)
    files = list(cache.glob("*.npz"))
    assert len(files) == 1
    assert load_omniglot(archive, image_size=20, cache_dir=cache) is first  # in-memory cache
    second = _load_cached.__wrapped__(archive.resolve(), 20, cache.resolve())  # bypass it: read the .npz file
    assert second is not first
    np.testing.assert_array_equal(first.images, second.images)
    assert first.class_names == second.class_names == (("Latin", "character01"), ("Latin", "character02"))


# -- Omniglot errors ---------------------------------------------------------------------------------------------
def test_missing_path_says_where_it_looked_and_how_to_fix(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="nowhere") as err:
        load_omniglot(missing)
    assert "data_dir" in str(err.value) and OMNIGLOT_ENV_VAR in str(err.value)
    monkeypatch.setenv(OMNIGLOT_ENV_VAR, str(missing))
    with pytest.raises(FileNotFoundError, match=f"nowhere.*{OMNIGLOT_ENV_VAR}"):
        OmniglotOneShotTask()


def test_folder_without_drawings(tmp_path):
    (tmp_path / "notes.txt").write_text("no drawings here")
    with pytest.raises(FileNotFoundError, match="no Omniglot drawings"):
        load_omniglot(tmp_path)


def test_corrupt_png_names_the_file(tmp_path):
    good = _png_bytes(SMALL1, "Latin/character01/0683_01.png")
    archive = _write_zip(tmp_path / "bad.zip", {
        "bad/Latin/character01/a_01.png": good,
        "bad/Latin/character01/a_02.png": good[: len(good) // 2],  # truncated
    })
    with pytest.raises(ValueError, match="corrupt.*a_02.png"):
        load_omniglot(archive)
    folder = tmp_path / "folder" / "Latin" / "character01"
    folder.mkdir(parents=True)
    (folder / "b_01.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match="corrupt.*b_01.png"):
        load_omniglot(tmp_path / "folder")


def test_file_that_is_not_a_zip(tmp_path):
    fake = tmp_path / "images_background.zip"
    fake.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable zip"):
        load_omniglot(fake)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_way": 101, "split": "test"}, ValueError, "n_way=101 is larger than the 100 classes"),
        ({"n_way": 143}, ValueError, "larger than the 142 classes"),
        ({"n_shots": 0}, ValueError, "n_shots must be >= 1"),
        ({"n_shots": 20}, ValueError, "21 distinct drawings"),
        ({"n_way": 1}, ValueError, "n_way must be >= 2"),
        ({"image_size": 1}, ValueError, "image_size must be >= 2"),
        ({"image_size": 31.0}, TypeError, "image_size must be an integer"),
        ({"n_test_classes": 242}, ValueError, "leaves no training class"),
        ({"n_test_classes": 0}, ValueError, "n_test_classes must be >= 1"),
        ({"split": "validation"}, ValueError, "unknown split"),
    ],
)
def test_one_shot_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        OmniglotOneShotTask(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_classes": 150}, "n_classes=150 is larger than the 142 classes"),
        ({"n_shots": 0}, "n_shots must be >= 1"),
        ({"n_queries": 0}, "n_queries must be >= 1"),
        ({"n_shots": 15, "n_queries": 6}, "21 distinct drawings"),
        ({"ordering": "sorted"}, "unknown ordering"),
    ],
)
def test_continual_omniglot_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ContinualOmniglotTask(**kwargs)


# -- natural images ------------------------------------------------------------------------------------------------
def _check_normalised(images: np.ndarray) -> None:
    flat = images.reshape(len(images), -1)
    np.testing.assert_allclose(flat.mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.abs(flat).max(axis=1), 1.0, atol=1e-5)


def test_skimage_patches_shape_range_and_split():
    train, test = skimage_patches(32, "train"), skimage_patches(32, "test")
    assert train.dtype == np.float32 and train.shape[1:] == (32, 32) and len(train) > 200
    assert test.shape[1:] == (32, 32) and len(test) > 30
    _check_normalised(train)
    _check_normalised(test)
    assert not set(SKIMAGE_TRAIN_IMAGES) & set(SKIMAGE_TEST_IMAGES)
    train_keys = {p.tobytes() for p in train}
    assert not any(p.tobytes() in train_keys for p in test)
    assert len(load_natural_images("skimage", 32, "all")) == len(train) + len(test)
    small = skimage_patches(8, "train")
    assert small.shape[1:] == (8, 8)
    _check_normalised(small)


def _fake_cifar_batch(n: int, seed: int) -> bytes:
    """A batch in the CIFAR-10 python format (pickled dict, uint8 rows of 3 x 32 x 32 channel-major pixels)."""
    data = np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)
    return pickle.dumps({b"data": data, b"labels": [0] * n})


def test_cifar10_folder_and_archive(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i in range(1, 6):
        (folder / f"data_batch_{i}").write_bytes(_fake_cifar_batch(4, i))
    (folder / "test_batch").write_bytes(_fake_cifar_batch(3, 9))
    train = load_natural_images(tmp_path, 32, "train")  # the parent folder works too
    assert train.shape == (20, 32, 32)
    _check_normalised(train)
    # gray = channel mean, then normalised: check one image against the raw bytes
    raw = pickle.loads((folder / "data_batch_1").read_bytes())[b"data"][0].reshape(3, 32, 32).mean(0)
    expected = (raw - raw.mean()) / np.abs(raw - raw.mean()).max()
    np.testing.assert_allclose(train[0], expected, atol=1e-5)
    assert load_natural_images(folder, 16, "test").shape == (3, 16, 16)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    np.testing.assert_array_equal(load_natural_images(archive, 32, "test"), load_natural_images(folder, 32, "test"))
    task = ImageReconstructionTask(images=folder, split="test", n_images=3)
    assert task.pool.shape == (3, 1024)


def test_natural_image_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="CIFAR-10 not found"):
        load_natural_images(tmp_path / "missing")
    (tmp_path / "data_batch_1").write_bytes(_fake_cifar_batch(2, 0))
    with pytest.raises(FileNotFoundError, match="data_batch_2"):
        cifar10_gray(str(tmp_path), 32, "train")
    (tmp_path / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="corrupt CIFAR-10 batch .*test_batch"):
        cifar10_gray(str(tmp_path), 32, "test")
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 100), dtype=np.uint8)}))
    with pytest.raises(ValueError, match="expected \\(N, 3072\\)"):
        cifar10_gray(str(tmp_path), 16, "test")
    with pytest.raises(ValueError, match="shape"):
        load_natural_images(np.zeros((4, 8, 9)), 8)
    with pytest.raises(ValueError, match="NaN"):
        load_natural_images(np.full((4, 8, 8), np.nan), 8)
    with pytest.raises(TypeError, match="images must be"):
        load_natural_images(3)
    with pytest.raises(ValueError, match="image_size must be >= 2"):
        load_natural_images("skimage", 1)
    with pytest.raises(ValueError, match="n_images=4 is larger than the 3 images"):
        ImageReconstructionTask(images=np.random.default_rng(0).normal(size=(3, 8, 8)), image_size=8, n_images=4)
