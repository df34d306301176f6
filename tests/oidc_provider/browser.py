"""Signs in through the test provider's pages in headless Chromium (Debian's, driven by
Playwright; never a downloaded browser).

As a library: `sign_in(page, ...)` on a page showing the login form (the console's tests),
`complete_login(url, ...)` for an authorization URL, `complete_device_login(url, ...)` for a
device verification URL.

As a program it stands in for a web browser: flytekit's `Pkce` flow calls
`webbrowser.open_new_tab(url)`, and Python's `webbrowser` runs `$BROWSER` with the URL as its one
argument. It takes `$BROWSER` as the path of one executable (no arguments: the whole value is
the program's name), and waits for it to exit before flytekit starts answering on its callback
port; so `write_browser_command` writes a small executable that runs this file with
`--background`, which returns at once and signs in from a detached process."""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_MS = 60_000


def sign_in(page: Any, username: str, password: str) -> None:
    """Fills the provider's login form shown on `page` and submits it; returns once the browser
    has left the page (the redirect, or the provider's answer)."""
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', password)
    with page.expect_navigation(timeout=TIMEOUT_MS):
        page.click("#login")


def _launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=str(CHROMIUM))


def complete_login(url: str, username: str, password: str) -> str:
    """Opens the authorization `url`, signs in and follows the redirect; returns where the
    browser ended up (the client's redirect URI with `code` and `state`). Raises when the
    provider refused the login."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = _launch(playwright)
        try:
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(url)
            sign_in(page, username, password)
            if page.locator("#error").count():
                raise RuntimeError(f"login refused: {page.locator('#error').inner_text()}")
            return str(page.url)
        finally:
            browser.close()


def complete_device_login(url: str, username: str, password: str) -> None:
    """Opens a device verification `url` (with `?user_code=...`, or the code already typed in),
    signs in and approves; raises unless the provider approved the device."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = _launch(playwright)
        try:
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(url)
            sign_in(page, username, password)
            if not page.locator("#approved").count():
                raise RuntimeError(f"device not approved: {page.content()}")
        finally:
            browser.close()


def write_browser_command(directory: Path, username: str, password: str) -> Path:
    """An executable in `directory` to put in `$BROWSER`: it signs `username` in at the URL it
    is given, in the background, logging to `directory/browser.log`."""
    log = directory / "browser.log"
    script = directory / "sign-in-browser"
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--background",
        "--user",
        username,
        "--password",
        password,
        "--log",
        str(log),
    ]
    script.write_text("#!/bin/sh\nexec " + shlex.join(command) + ' "$@"\n')
    script.chmod(0o700)
    return script


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--device", action="store_true", help="a device verification URL")
    parser.add_argument("--background", action="store_true", help="sign in detached, return now")
    parser.add_argument("--log", help="where the detached sign-in writes what happened")
    parser.add_argument("url")
    args = parser.parse_args(argv)
    if args.background:
        # The caller (webbrowser) waits for us; its callback server answers only afterwards.
        rest = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--background"]
        log = open(args.log or os.devnull, "ab")  # noqa: SIM115 - handed to the child
        subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), *rest],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return 0
    if args.device:
        complete_device_login(args.url, args.user, args.password)
        print("device approved", flush=True)
    else:
        landed = complete_login(args.url, args.user, args.password)
        # Only the path: the query holds the authorization code.
        print("signed in, redirected to", landed.split("?")[0], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
