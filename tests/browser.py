"""Headless Chromium from Debian for the browser tests, driven by Playwright without
Playwright's own browser download (`make test` installs /usr/bin/chromium with apt-get when
it is missing; without it these tests skip and say why). Screenshots land under
test-artifacts/ (gitignored)."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.harness.procs import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts"
TIMEOUT_MS = 20_000
DESKTOP = {"width": 1280, "height": 1800}


def chromium_or_skip() -> Path:
    """The `chromium` fixture (tests/conftest.py)."""
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: `make test` installs Debian's chromium with apt-get when it can")
    return CHROMIUM


def in_browser(chromium: Path, drive, *, viewport: dict = DESKTOP, timeout: float = 120, **context_options):
    """Run `drive(page)` in headless Chromium, in a thread of its own: Playwright's sync API
    runs an event loop, and Django refuses database calls in a thread that has one."""
    from playwright.sync_api import sync_playwright

    def run():
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(viewport=viewport, **context_options)
                page = context.new_page()
                page.set_default_timeout(TIMEOUT_MS)
                return drive(page)
            finally:
                browser.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result(timeout=timeout)
