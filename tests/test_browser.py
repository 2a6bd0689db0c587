"""A real browser (Debian's Chromium, driven headless by Playwright) against `payments serve`.

The dashboard is a page on another origin than the API: the browser sends CORS preflights and
enforces the answers itself, so these tests prove what a header check cannot. Nothing may leave
loopback: every request to another host is aborted and recorded, and the tests assert there was none.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyotp
import pytest

from conftest import ROOT
from helpers import DEMO_SECRET, token, wait_for_calm_otp_step
from helpers.processes import LocalStack

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = ROOT / "docs" / "swagger-ui.png"

pytestmark = [
    pytest.mark.local_stack,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (make browser)"),
]

# The dashboard's side: one helper the page exposes, calling the API the way a browser client does.
DASHBOARD_PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>points dashboard</title></head><body>
<script>
async function callApi(url, headers, body) {
  try {
    const response = await fetch(url, {method: "POST", body: JSON.stringify(body),
                                       headers: {"Content-Type": "application/json", ...headers}});
    return {status: response.status, body: await response.json()};
  } catch (error) {
    return {error: String(error)};
  }
}
</script></body></html>
"""


class _PageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(DASHBOARD_PAGE)))
        self.end_headers()
        self.wfile.write(DASHBOARD_PAGE)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return


class PageOrigin:
    """The dashboard page, served from its own loopback origin (its own port)."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def pages() -> Iterator[tuple[PageOrigin, PageOrigin]]:
    allowed, other = PageOrigin(), PageOrigin()
    yield allowed, other
    allowed.close()
    other.close()


@pytest.fixture(scope="module")
def stack(pages: tuple[PageOrigin, PageOrigin]) -> Iterator[LocalStack]:
    with LocalStack("--cors-origin", pages[0].origin) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def offline(browser: Any) -> Iterator[tuple[Any, list[str]]]:
    """A browser context that may reach loopback only; yields it and the list of refused addresses."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    refused: list[str] = []

    def only_loopback(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    yield context, refused
    context.close()


def call(page: Any, url: str, headers: dict[str, str], body: Any) -> dict[str, Any]:
    return page.evaluate("([url, headers, body]) => callApi(url, headers, body)", [url, headers, body])


def test_the_allowed_origin_calls_both_routes(
    stack: LocalStack, pages: tuple[PageOrigin, PageOrigin], offline: tuple[Any, list[str]]
) -> None:
    context, refused = offline
    api = f"http://127.0.0.1:{stack.port}"
    page = context.new_page()
    page.goto(pages[0].origin)

    result = call(page, f"{api}/api/v1/asker/payment/progress", {"x-token": token(149)}, {"concern_idx": 1577})
    assert result["status"] == 200
    assert result["body"]["data"]["point"] == {"honeypot": "280개"}
    assert [willsoner["idx"] for willsoner in result["body"]["data"]["willsoners"]] == [15, 12, 18]

    # an error reaches the page too (it is readable because it carries the CORS headers)
    result = call(page, f"{api}/api/v1/asker/payment/progress", {"x-token": "bad"}, {"concern_idx": 1577})
    assert (result["status"], result["body"]) == (401, {"code": "invalid_token", "message": "Access token is invalid"})

    wait_for_calm_otp_step()
    swap = {
        "event_id": 3,
        "otp_code": pyotp.TOTP(DEMO_SECRET).now(),
        "point": {"app_id": 1, "point_id": 1, "adjust_point_quantity": -110},
        "coin": {"coin_id": 2, "adjust_coin_quantity": 11},
    }
    result = call(page, f"{api}/v1.0/db/swap", {"Authorization": f"Bearer {token(19)}"}, swap)
    assert (result["status"], result["body"]["return"], result["body"]["message"]) == (200, 0, "success")
    assert result["body"]["value"]["point"]["point_quantity"] == 1990
    assert result["body"]["value"]["coin"]["coin_quantity"] == 11
    assert refused == []


def test_the_browser_blocks_another_origin(
    stack: LocalStack, pages: tuple[PageOrigin, PageOrigin], offline: tuple[Any, list[str]]
) -> None:
    context, refused = offline
    api = f"http://127.0.0.1:{stack.port}"
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.goto(pages[1].origin)

    for path, headers in (
        ("/api/v1/asker/payment/progress", {"x-token": token(149)}),
        ("/v1.0/db/swap", {"Authorization": f"Bearer {token(19)}"}),
    ):
        result = call(page, f"{api}{path}", headers, {"concern_idx": 1577})
        assert result == {"error": "TypeError: Failed to fetch"}
    blocked = [text for text in console if "blocked by CORS policy" in text]
    assert len(blocked) == 2, console
    assert all(pages[1].origin in text for text in blocked)
    assert refused == []


def test_docs_render_offline_and_try_it_out_works(
    stack: LocalStack, offline: tuple[Any, list[str]], tmp_path: Path
) -> None:
    context, refused = offline
    page = context.new_page()
    page.goto(f"http://127.0.0.1:{stack.port}/docs")
    paths = page.locator(".opblock-summary-path")
    paths.first.wait_for()
    assert sorted(paths.all_inner_texts()) == ["/api/v1/asker/payment/progress", "/v1.0/db/swap"]

    # Authorize with a demo token for the Willson route (its x-token header)
    page.get_by_role("button", name="Authorize").first.click()
    scheme = page.locator(".modal-ux .auth-container").filter(has_text="XToken")
    scheme.locator("input").fill(token(149))
    scheme.locator("button.authorize").click()
    page.locator(".modal-ux button.btn-done").first.click()

    operation = page.locator(".opblock-post").filter(has_text="/api/v1/asker/payment/progress")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    assert '"concern_idx": 1577' in operation.locator("textarea.body-param__text").input_value()
    operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table tr.response .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip() == "200"
    assert (
        "280개" in operation.locator(".live-responses-table tr.response .response-col_description").first.inner_text()
    )
    # docs/swagger-ui.png is this picture; it is rewritten only on request, so a test run leaves the tree clean
    page.evaluate("document.querySelector('.live-responses-table').scrollIntoView(); window.scrollBy(0, -300)")
    rewrite = os.environ.get("UPDATE_SCREENSHOTS") == "1" or not SCREENSHOT.exists()
    page.screenshot(path=str(SCREENSHOT if rewrite else tmp_path / SCREENSHOT.name))
    assert refused == []
