import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import torch  # noqa: E402

torch.set_num_threads(1)  # pytest-xdist runs one worker per core


import pytest  # noqa: E402
from cases import disk  # noqa: E402


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (tests/cases/disk.py); the test is skipped where it cannot be mounted."""
    with disk.small_disk(tmp_path / "disk") as folder:
        yield folder
