"""Shared pytest fixtures: paths to the repository and to the read-only ../shared material.

../shared is test data beside the checkout, not part of the product: tests that ask for `shared_dir` are skipped,
naming the folder, when it is absent (and fail as usual when it is present but a file in it is missing or wrong).
Subprocesses that tests start use `sys.executable`, the interpreter pytest runs under (.ci/test picks it: one
setting, LORABRIDGE_TEST_PYTHON, for xunit and pytest alike).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("LORABRIDGE_SHARED_DIR") or REPO.parent / "shared").resolve()
sys.path.insert(0, str(REPO / "python"))


def shared_skip_reason() -> str:
    return f"test data folder {SHARED} not found (../shared beside the checkout, or set LORABRIDGE_SHARED_DIR)"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(shared_skip_reason())
    return SHARED
