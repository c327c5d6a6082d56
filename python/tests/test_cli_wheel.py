"""The `clarity` binary as a pip-installed wheel (maturin, bindings = "bin"): what
scripts/python-test.sh builds from crates/clarity-cli/pyproject.toml and installs into the venv."""

import os
import subprocess
import sys
from pathlib import Path

import pytest


def venv_clarity():
    exe = Path(sys.executable).parent / "clarity"
    if not exe.is_file():
        if os.environ.get("CLARITY_EXPECT_CLI_WHEEL") == "1":
            pytest.fail(f"{exe}: missing, but scripts/python-test.sh installed the CLI wheel")
        pytest.skip("SKIPPED: the clarity CLI wheel is not installed in this environment")
    return exe


def test_the_pip_installed_wheel_runs_clarity_version(clarity_exe):
    exe = venv_clarity()
    # pip put it into this environment's scripts directory, next to python.
    assert exe.resolve().is_relative_to(Path(sys.prefix).resolve())
    p = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("clarity ")
    # The same version as the binary the other tests run.
    built = subprocess.run([clarity_exe, "--version"], capture_output=True, text=True, timeout=60)
    assert p.stdout == built.stdout


def test_the_installed_wheel_records_its_files():
    venv_clarity()
    from importlib.metadata import distribution

    dist = distribution("clarity-cli")
    assert any(str(f).endswith("bin/clarity") for f in dist.files or [])
