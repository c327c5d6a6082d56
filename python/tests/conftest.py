import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def clarity_bin():
    """The clarity binary: $CLARITY_BIN, else a debug/release build in the target dir."""
    env = os.environ.get("CLARITY_BIN")
    if env:
        return env
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    for p in (target / "debug" / "clarity", target / "release" / "clarity"):
        if p.is_file():
            return str(p)
    return shutil.which("clarity")


@pytest.fixture(autouse=True)
def own_cache(tmp_path_factory, monkeypatch):
    """Every test gets an empty run cache. The default (~/.cache/clarity) outlives the test and
    is keyed by the worker's path, which pytest reuses (/tmp/pytest-of-USER/pytest-N cycles):
    a sweep that should call the worker was once answered from an earlier CI run's cache."""
    monkeypatch.setenv("CLARITY_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def clarity_exe():
    exe = clarity_bin()
    if not exe:
        pytest.skip("SKIPPED: no clarity binary (set CLARITY_BIN or cargo build -p clarity-cli)")
    return exe


@pytest.fixture
def clarity(clarity_exe):
    exe = clarity_exe

    def run(*args, cwd):
        p = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, f"clarity {' '.join(args)} failed:\n{p.stdout}\n{p.stderr}"
        return p

    return run


def sweep_config(worker: Path, out: str, image: str = "raw", workers: int = 2, axes=None) -> str:
    """A small sweep (builtin phantoms, 2 cases × 3 blur levels) run by a Python worker."""
    axes = axes or '"gaussian_blur.sigma" = [1, 3]'
    return f"""
seeds = [0]
output = "{out}"

[cohort]
kind = "builtin"
n = 2
size = 64

[adapter]
kind = "worker"
program = "{sys.executable}"
args = ["{worker}"]
workers = {workers}
image = "{image}"
timeout_secs = 60

[axes]
{axes}
"""
