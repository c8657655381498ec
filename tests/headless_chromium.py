"""Headless Chromium driven by playwright, for the HTML report's tests and benchmark.

A browser build cannot be downloaded here, so it is Debian's ``/usr/bin/chromium``, or
the executable ``PROMPTFLOW_CHROMIUM`` names. A page opened on a report fetches files
only: the report is one file, and anything else it asked for would be a defect.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path(os.environ.get("PROMPTFLOW_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def launched_chromium() -> Iterator[Any]:
    """A playwright ``Browser`` on ``CHROMIUM``, closed at the end of the block."""
    # Imported here: playwright is needed only where a browser is launched.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def fetch_files_only(page: Any) -> None:
    """Let ``page`` load ``file:`` URLs and abort any other request it makes."""
    page.route("**/*", _continue_if_file)


def _continue_if_file(route: Any) -> None:
    if route.request.url.startswith("file:"):
        route.continue_()
    else:
        route.abort()
