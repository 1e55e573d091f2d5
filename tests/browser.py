"""Drive the web app in Debian's Chromium with Playwright: a real `framecast serve`, accounts, screenshots.

Chromium is the Debian package (`make browser-deps`), launched with the flags the project's tests rely on: fake
camera and microphone, media permission prompts accepted. Without it the browser tests skip, and under CI they fail.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from conftest import free_port

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    # Headless Chromium 156 keeps its omnibox popups (WebUI pages no one sees) in a renderer that spins at half a
    # core while any page is open; on two cores that slows every browser test.
    "--disable-features=WebUIOmniboxPopup,WebUIOmniboxAimPopup",
]
ARTIFACTS = Path(os.environ.get("FRAMECAST_TEST_ARTIFACTS") or Path(__file__).parent.parent / "test-artifacts")


def require_chromium() -> None:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is needed for the browser tests: run `make browser-deps`")
        pytest.skip("chromium is not installed (make browser-deps)")


@contextlib.contextmanager
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium, closed when the block ends."""
    require_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class WebServer:
    base_url: str
    data_dir: Path
    env: dict[str, str] = field(repr=False)

    def cli(self, *args: str, stdin: str | None = None) -> str:
        """Run a `framecast` command against this server's data; returns its stdout."""
        done = subprocess.run(
            [sys.executable, "-m", "framecast", *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def add_user(self, email: str, password: str) -> None:
        self.cli("user", "add", email, "--password-stdin", stdin=password + "\n")

    def token(self, email: str) -> str:
        """An API token for `email` (created as a user if needed), for setting things up over the REST API."""
        return self.cli("token", "create", "--email", email).strip()


@contextlib.contextmanager
def web_server(folder: Path, **settings: str) -> Iterator[WebServer]:
    """`framecast serve` with workers in-process on a free port until the block ends; `settings` are FRAMECAST_*
    variables by their lower-case names without the prefix (e.g. media_threads="1")."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMECAST_")}
    env |= {
        "FRAMECAST_DATA_DIR": str(folder / "data"),
        "FRAMECAST_HOST": "127.0.0.1",
        "FRAMECAST_PORT": str(port),
        "FRAMECAST_SECRET_KEY": "browser-tests-secret",
    }
    env |= {f"FRAMECAST_{name.upper()}": value for name, value in settings.items()}
    base_url = f"http://127.0.0.1:{port}"
    log = folder / "serve.log"
    with log.open("ab") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "framecast", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=stderr
        )
    try:
        deadline = time.monotonic() + 90  # generous: a busy 2-core CI machine can take a while
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                    break
            if process.poll() is not None:
                pytest.fail(f"framecast serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"framecast serve did not answer /healthz:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)
        yield WebServer(base_url=base_url, data_dir=folder / "data", env=env)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def sign_in(page: Page, base_url: str, email: str, password: str) -> None:
    """Sign in through the sign-in form, as a person would; ends on the library."""
    page.goto(f"{base_url}/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{base_url}/library")


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save what the page shows now as test-artifacts/screenshots/{name}.png (for a person to look at)."""
    path = ARTIFACTS / "screenshots" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=full_page)
    return path


def collect_errors(page: Page) -> list[str]:
    """Uncaught script errors on `page` from now on; assert it stays empty to catch broken modules."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors
