"""The demo in a real browser: ``streamlit run`` on a free local port, driven by Playwright in
Debian's headless Chromium. Used by the browser test (``tests/app/test_browser.py``) and by
``homepilot screenshots``, which refreshes the README's pictures from a real quickstart run.

Playwright (the ``dev`` extra) and Chromium (``apt-get install chromium``) are imported or looked
for only when a page is driven.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from app.demo import DemoConfig, command, environment

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
#: the README's pictures, docs/screenshot_<name>.png
SHOTS = ("live_home", "live_home_accepted", "dataset", "report")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Wait until Streamlit answers its health check; fails naming the exit status and output."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}: {proc.stdout.read()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                if r.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"streamlit did not answer on {url} within {timeout} s")


@contextmanager
def serve(cfg: DemoConfig, home: Path, timeout: float = 60.0) -> Iterator[str]:
    """Run the app for ``cfg`` on a free 127.0.0.1 port (headless, caches under ``home``); yields its URL."""
    cfg = replace(cfg, port=free_port(), address="127.0.0.1", headless=True)
    env = environment(cfg)
    env["HOME"] = str(home)  # keep the app's caches (the demo dataset) out of the real home
    env["COLUMNS"] = "80"  # nothing here reads the terminal, whatever its width
    proc = subprocess.Popen(command(cfg), env=env, cwd=home, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    url = f"http://127.0.0.1:{cfg.port}"
    try:
        wait_healthy(url, proc, timeout)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def chromium(profile: Path, viewport: tuple[int, int] = (1500, 1250), executable: str = CHROMIUM):
    """A headless Chromium context (Playwright) with its profile under ``profile``."""
    if not Path(executable).exists():
        raise FileNotFoundError(f"Chromium is not installed at {executable} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # Chromium's singleton socket goes under TMPDIR: keep it short whatever the profile's path is
        # (a Unix socket path may not pass 107 bytes)
        ctx = p.chromium.launch_persistent_context(str(profile), executable_path=executable, headless=True,
                                                   args=ARGS, viewport={"width": viewport[0], "height": viewport[1]},
                                                   env={**os.environ, "TMPDIR": "/tmp"})
        try:
            yield ctx
        finally:
            ctx.close()


def settled(page) -> None:
    """Wait until the rerun is over: Streamlit marks the previous run's elements stale until then."""
    page.wait_for_function("document.querySelectorAll('[data-stale=\"true\"]').length === 0")


def shoot(page, path: Path) -> None:
    """Screenshot of the viewport, the mouse moved away so no tooltip covers the page."""
    page.mouse.move(0, 0)
    time.sleep(0.5)
    page.screenshot(path=str(path), full_page=False)
    if path.stat().st_size <= 10_000:
        raise RuntimeError(f"{path}: the screenshot is nearly empty ({path.stat().st_size} bytes)")


def metric(page, label: str):
    """The value of the live page's counter named ``label``."""
    return page.locator('[data-testid="stMetric"]', has_text=label).locator('[data-testid="stMetricValue"]')


def step_until_shown(page, max_steps: int = 40) -> int:
    """Step the live home until a recommendation is shown (Accept enabled); returns the decision point."""
    from playwright.sync_api import expect

    accept = page.locator(".st-key-live_accept button")
    for i in range(1, max_steps + 1):
        page.locator(".st-key-live_step button").first.click()
        expect(metric(page, "Decision points")).to_have_text(str(i))
        expect(page.get_by_text(f"Decision point {i} at")).to_be_visible()
        settled(page)
        if accept.count() == 1 and accept.is_enabled():
            return i
    raise RuntimeError(f"no recommendation cleared the gate in {max_steps} decision points")


def open_card(page) -> None:
    """Dataset browser, Card tab, scrolled to its statistics images once they have loaded."""
    from playwright.sync_api import expect

    page.get_by_role("link", name="Dataset browser").click()
    expect(page.get_by_role("heading", name="Dataset browser")).to_be_visible()
    page.get_by_role("tab", name="Card").click()
    imgs = page.locator('[data-testid="stImage"] img')
    expect(imgs).to_have_count(2, timeout=120_000)
    page.wait_for_function("Array.from(document.querySelectorAll('[data-testid=\"stImage\"] img'))"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    imgs.first.evaluate("e => e.scrollIntoView({block: 'center'})")


def screenshots(cfg: DemoConfig, out: Path, work: Path, reproduce: Path | None = None,
                log=print) -> list[Path]:
    """The README's pictures of the app run with ``cfg`` (a trained model, its dataset and report):
    the live home at the page's default gate stepped to the first recommendation shown, then after
    *Accept*; the dataset card; the report viewer; with ``reproduce``, the report viewer on that
    reproduction report from its gate-at-0.7 section. Writes ``out/screenshot_<name>.png``;
    ``work`` holds the app's caches and the browser profile."""
    from playwright.sync_api import expect

    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with serve(cfg, work, timeout=120) as url, chromium(work / "chromium-profile") as ctx:
        page = ctx.new_page()
        page.set_default_timeout(120_000)
        page.goto(url)
        expect(page.get_by_role("heading", name="HomePilot: live home")).to_be_visible()
        settled(page)
        i = step_until_shown(page)
        log(f"live home: decision point {i} shown")
        shoot(page, out / "screenshot_live_home.png")
        written.append(out / "screenshot_live_home.png")
        page.locator(".st-key-live_accept button").click()
        settled(page)
        expect(metric(page, "Accepted")).to_have_text("1")
        shoot(page, out / "screenshot_live_home_accepted.png")
        written.append(out / "screenshot_live_home_accepted.png")
        open_card(page)
        shoot(page, out / "screenshot_dataset.png")
        written.append(out / "screenshot_dataset.png")
        page.get_by_role("link", name="Report viewer").click()
        expect(page.get_by_role("heading", name="Whole test set")).to_be_visible()
        settled(page)
        shoot(page, out / "screenshot_report.png")
        written.append(out / "screenshot_report.png")
    if reproduce is not None:
        with serve(replace(cfg, report=str(reproduce)), work, timeout=120) as url, \
                chromium(work / "chromium-profile", viewport=(1400, 1000)) as ctx:
            page = ctx.new_page()
            page.set_default_timeout(120_000)
            page.goto(url)
            page.get_by_role("link", name="Report viewer").click()
            expect(page.get_by_role("heading", name="Whole test set")).to_be_visible()
            settled(page)
            h = page.get_by_role("heading", name="Exposure gate at 0.7").first
            h.evaluate("e => e.scrollIntoView({block: 'start'})")
            page.evaluate("window.scrollBy(0, -60)")
            shoot(page, out / "screenshot_report_reproduce.png")
            written.append(out / "screenshot_report_reproduce.png")
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m app.browser`` (``make screenshots``): refresh the README's pictures."""
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(prog="python -m app.browser", description=screenshots.__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="trained run directory (e.g. quickstart_out/runs/main)")
    ap.add_argument("--data", required=True, help="its dataset directory (e.g. quickstart_out/data)")
    ap.add_argument("--report", required=True, help="its evaluation report directory (e.g. docs/quickstart_eval)")
    ap.add_argument("--reproduce", help="a `homepilot reproduce` report directory (e.g. docs/reproduce)")
    ap.add_argument("--out", default="docs", help="where screenshot_<name>.png go (default: docs)")
    a = ap.parse_args(argv)
    try:
        cfg = DemoConfig(model=a.model, data=a.data, report=a.report)
        if a.reproduce and not Path(a.reproduce, "report.json").exists():
            raise ValueError(f"--reproduce {a.reproduce}: no report.json there")
        if not Path(CHROMIUM).exists():
            raise ValueError(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    except ValueError as e:
        ap.error(str(e))
    with tempfile.TemporaryDirectory(prefix="hp-shots-") as work:
        # every picture first, then the copies: a failure half-way leaves docs/ as it was
        shots = screenshots(cfg, Path(work, "shots"), Path(work, "app"), Path(a.reproduce) if a.reproduce else None)
        Path(a.out).mkdir(parents=True, exist_ok=True)
        for p in shots:
            shutil.copyfile(p, Path(a.out, p.name))
            print(f"wrote {Path(a.out, p.name)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
