"""Shared fixtures of the app tests: a tiny model trained on the demo home's own history."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory (``RUN/model`` + ``RUN/config.json``) of a tiny model trained on seed 0,
    home 0 (the live page's default home) by ``tests.app.tiny_run.train_live_run``: ~30 s on
    2 idle cores, once per session."""
    pytest.importorskip("torch")
    from tests.app.tiny_run import train_live_run

    return train_live_run(tmp_path_factory.mktemp("trained_run"))
