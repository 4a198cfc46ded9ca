"""The dashboard in a browser: a real `frontier serve` (tests/live_server.py), Debian's Chromium via Playwright.

Chromium comes from the distribution (`make browser`), never from `playwright install`; without it these tests
fail, they do not skip. Screenshots go to out/screenshots/ and are listed at the end of the pytest run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.services import ROOT, small_student

__all__ = ["small_student"]

CHROMIUM = Path("/usr/bin/chromium")
# Background networking off: this machine's network is closed, and a test must not wait on one.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "out" / "screenshots"
_taken: list[Path] = []

expect.set_options(timeout=20_000)


def shoot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save a screenshot of the page under out/screenshots/ (listed in the pytest summary)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    _taken.append(path)
    return path


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """List the screenshots this run saved, so they can be opened from the test output."""
    if _taken:
        terminalreporter.write_sep("-", "dashboard screenshots")
        for path in _taken:
            terminalreporter.write_line(str(path))


# Package scope, not session: Playwright's sync API keeps an asyncio loop running in the main thread while it is
# open, and later tests that call asyncio.run() (tests/service/test_load.py) fail if it outlives this package.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium (fails loudly when it is not installed)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)", pytrace=False)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no stored API key) and page; browser console errors fail the test."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"
