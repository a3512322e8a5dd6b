"""The app in a real browser: ``streamlit run`` on a free local port (the ``homepilot demo``
command line), Debian's Chromium driven by Playwright; step the home, accept a recommendation,
check that the acceptance metric changed, save a screenshot.

Skips only where Chromium is not installed at /usr/bin/chromium (``.ci/run`` installs it).
Set ``HOMEPILOT_UPDATE_SCREENSHOT=1`` to also copy the screenshot to ``docs/screenshot.png``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from app.demo import DemoConfig, command, environment

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"streamlit exited with {proc.returncode}: {proc.stdout.read()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                if r.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"streamlit did not answer on {url} within {timeout} s")


@pytest.fixture
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium); .ci/run installs it")
    return CHROMIUM


@pytest.fixture
def app_url(chromium, tmp_path):
    port = _free_port()
    cfg = DemoConfig(port=port, address="127.0.0.1", headless=True)
    env = environment(cfg)
    env["HOME"] = str(tmp_path)  # keep the app's caches out of the real home
    proc = subprocess.Popen(command(cfg), env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def settled(page) -> None:
    """Wait until the rerun is over: Streamlit marks the previous run's elements stale until then."""
    page.wait_for_function("document.querySelectorAll('[data-stale=\"true\"]').length === 0")


@pytest.mark.timeout(240)
def test_step_accept_in_chromium(chromium, app_url, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    def metric(page, label: str):
        return page.locator('[data-testid="stMetric"]', has_text=label).locator('[data-testid="stMetricValue"]')

    with sync_playwright() as p:
        # Chromium's singleton socket goes under TMPDIR: keep it short whatever pytest's temp path is
        # (a Unix socket path may not pass 107 bytes)
        ctx = p.chromium.launch_persistent_context(str(tmp_path / "chromium-profile"), executable_path=chromium,
                                                   headless=True, args=ARGS, viewport={"width": 1500, "height": 1300},
                                                   env={**os.environ, "TMPDIR": "/tmp"})
        try:
            page = ctx.new_page()
            page.set_default_timeout(30_000)
            page.goto(app_url)
            # the first load fetches the widgets' lazily loaded scripts: ~15 s on a busy 2-core machine
            expect(page.get_by_role("heading", name="HomePilot: live home")).to_be_visible(timeout=90_000)
            expect(metric(page, "Decision points")).to_have_text("0", timeout=90_000)
            expect(metric(page, "Acceptance rate")).to_have_text("–")
            slider = page.locator(".st-key-live_threshold").get_by_role("slider")  # the gate threshold: open it fully so a step shows something
            slider.focus()
            slider.press("Home")
            expect(slider).to_have_attribute("aria-valuetext", "0.00")
            accept = page.locator(".st-key-live_accept button")  # widgets by their stable keys
            for i in range(1, 31):
                page.locator(".st-key-live_step button").first.click()
                expect(metric(page, "Decision points")).to_have_text(str(i))
                expect(page.get_by_text(f"Decision point {i} at")).to_be_visible()
                settled(page)
                if accept.count() == 1 and accept.is_enabled():
                    break
            expect(accept).to_be_enabled()
            accept.click()
            settled(page)
            expect(metric(page, "Acceptance rate")).to_have_text("100%")
            expect(metric(page, "Accepted")).to_have_text("1 of 1")
            expect(page.get_by_text("Answer: accepted by you.")).to_be_visible()
            shot = tmp_path / "screenshot.png"
            page.screenshot(path=str(shot), full_page=False)
            assert shot.stat().st_size > 10_000
            if os.environ.get("HOMEPILOT_UPDATE_SCREENSHOT") == "1":
                shutil.copyfile(shot, ROOT / "docs" / "screenshot.png")
        finally:
            ctx.close()
