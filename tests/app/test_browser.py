"""The app in a real browser: ``streamlit run`` on a free local port (the ``homepilot demo``
command line) with a tiny trained run (``trained_run``), Debian's Chromium driven by Playwright
(``app.browser``, which ``make screenshots`` also uses for the README's pictures).

At the default gate (0.7) the test steps the home until a recommendation is shown, accepts it,
and checks that the floor plan shows the device in its new state, marked as just changed; then
it opens the dataset browser's card (its statistics images load) and the report viewer, taking a
screenshot of each page (the live home twice: the recommendation marked on the floor plan, then
the accepted change). No request leaves 127.0.0.1 (the app works offline).

Skips only where Chromium is not installed at /usr/bin/chromium (``.ci/run`` installs it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.browser import CHROMIUM, chromium, metric, open_card, serve, settled, shoot, step_until_shown
from app.demo import DemoConfig

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "docs" / "quickstart_eval"  # a real quickstart report, kept in the repository


@pytest.fixture
def browser() -> str:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium); .ci/run installs it")
    return CHROMIUM


@pytest.fixture
def app_url(browser, trained_run, tmp_path):
    with serve(DemoConfig(model=str(trained_run), report=str(REPORT)), tmp_path) as url:
        yield url


@pytest.mark.timeout(300)
def test_show_accept_and_every_page_in_chromium(browser, app_url, tmp_path):
    from playwright.sync_api import expect

    outside: list[str] = []
    warnings: list[str] = []  # Vega-Lite's "Infinite extent": a chart scale with no finite value
    with chromium(tmp_path / "chromium-profile", executable=browser) as ctx:
        page = ctx.new_page()
        page.on("request", lambda r: outside.append(r.url)
                if not r.url.startswith(app_url) and not r.url.startswith(("data:", "blob:")) else None)
        page.on("console", lambda m: warnings.append(m.text) if "Infinite extent" in m.text else None)
        page.set_default_timeout(60_000)
        page.goto(app_url)
        # the first load fetches the widgets' lazily loaded scripts: ~15 s on a busy 2-core machine
        expect(page.get_by_role("heading", name="HomePilot: live home")).to_be_visible(timeout=90_000)
        expect(page.get_by_text("Recommender: model")).to_be_visible(timeout=90_000)
        expect(metric(page, "Decision points")).to_have_text("0")
        expect(page.locator(".st-key-live_threshold").get_by_role("slider")).to_have_attribute(
            "aria-valuetext", "0.70")  # the default gate
        step_until_shown(page, max_steps=20)
        accept = page.locator(".st-key-live_accept button")
        expect(accept).to_be_enabled()
        expect(page.locator("span.stMarkdownColoredText", has_text="Shown")).to_be_visible()  # not "Withheld"
        proposed = page.locator('svg.floor-plan g.device[data-mark="proposed"]')
        expect(proposed.first).to_be_visible()
        targets = [(g.get_attribute("data-room"), g.get_attribute("data-device")) for g in proposed.all()]
        shoot(page, tmp_path / "screenshot_live_home.png")  # the recommendation, marked on the plan
        accept.click()
        settled(page)
        expect(metric(page, "Accepted")).to_have_text("1")
        expect(metric(page, "Acceptance rate")).to_have_text("100%")
        expect(page.get_by_text("Answer: accepted by you.")).to_be_visible()
        # the floor plan shows the change happening: the device in its new state, marked changed
        changed = page.locator('svg.floor-plan g.device[data-mark="changed"]')
        expect(changed.first).to_be_visible()
        now = {(g.get_attribute("data-room"), g.get_attribute("data-device")): g for g in changed.all()}
        assert set(now) <= set(targets) and now
        for g in now.values():
            assert "✓" in g.text_content() and g.get_attribute("data-state") in g.text_content()
        shoot(page, tmp_path / "screenshot_live_home_accepted.png")

        open_card(page)  # without --data, a tiny dataset is generated once
        shoot(page, tmp_path / "screenshot_dataset.png")

        page.get_by_role("link", name="Report viewer").click()
        expect(page.get_by_role("heading", name="Whole test set")).to_be_visible()
        expect(page.get_by_text("95% CI: bootstrap interval")).to_be_visible()
        expect(page.locator("[data-testid=\"stVegaLiteChart\"]")).to_have_count(1)  # Fig. 7a, once
        settled(page)
        shoot(page, tmp_path / "screenshot_report.png")
    assert outside == []  # nothing fetched from the internet (fonts, favicons, ...)
    assert warnings == []
