"""``homepilot demo``: start the Streamlit app (``app/streamlit_app.py``) with ``streamlit run``.

The options reach the app as environment variables (``HOMEPILOT_MODEL``, ``HOMEPILOT_DATA``,
``HOMEPILOT_REPORT``, ``HOMEPILOT_ADVISOR``), so the pages read them the same way under ``streamlit run``, AppTest and
the browser test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ENTRY = Path(__file__).resolve().parent / "streamlit_app.py"
ADVISOR_CHOICES: tuple[str, ...] = ("auto", "gbdt", "usual", "frequency")  # the live page's Recommender choices


@dataclass(frozen=True)
class DemoConfig:
    """What ``homepilot demo`` starts."""

    model: str | None = None  # trained run directory; None = the frequency baseline (the page says so)
    data: str | None = None  # dataset directory for the browser; None = a tiny one generated in a cache folder
    report: str | None = None  # evaluation report directory for the report page
    port: int = 8501  # local port the app listens on, 1..65535
    address: str = "localhost"  # interface to bind: localhost, or 0.0.0.0 to serve the network
    headless: bool = False  # do not open a browser window
    advisor: str = "auto"  # who recommends when the live page opens (app.advisors.ADVISORS but "model")

    def __post_init__(self) -> None:
        if self.advisor not in ADVISOR_CHOICES:
            raise ValueError(f"--advisor must be one of {', '.join(ADVISOR_CHOICES)}, got {self.advisor!r}")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port must be in 1..65535, got {self.port}")
        for name in ("model", "data", "report"):
            v = getattr(self, name)
            if v and not Path(v).exists():
                raise ValueError(f"--{name} {v}: no such file or directory")


def command(cfg: DemoConfig) -> list[str]:
    """The ``streamlit run`` command line for ``cfg``."""
    return [sys.executable, "-m", "streamlit", "run", str(ENTRY), "--server.port", str(cfg.port),
            "--server.address", cfg.address, "--server.headless", str(cfg.headless).lower(),
            "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none",  # a demo, not a dev server: no reruns on file changes
            "--client.toolbarMode", "minimal"]


def environment(cfg: DemoConfig, base: dict[str, str] | None = None) -> dict[str, str]:
    """The app's environment: ``base`` (default ``os.environ``) plus the HOMEPILOT_* options."""
    env = dict(os.environ if base is None else base)
    root = str(ENTRY.parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for name in ("model", "data", "report"):
        v = getattr(cfg, name)
        env[f"HOMEPILOT_{name.upper()}"] = str(Path(v).resolve()) if v else ""
    env["HOMEPILOT_ADVISOR"] = cfg.advisor
    return env


def main(cfg: DemoConfig) -> int:
    """Run the app until interrupted; returns streamlit's exit status."""
    try:
        import streamlit  # noqa: F401
    except ImportError:
        print("homepilot demo needs Streamlit: pip install 'homepilot[app]'", file=sys.stderr)
        return 2
    print(f"HomePilot demo on http://{cfg.address}:{cfg.port} (Ctrl+C stops it)", file=sys.stderr)
    try:
        return subprocess.call(command(cfg), env=environment(cfg))
    except KeyboardInterrupt:
        return 0
