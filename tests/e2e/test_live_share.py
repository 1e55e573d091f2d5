"""Instant share end to end: `framecast record --source` replays a 3-minute file while a signed-out Chromium viewer
watches the share link live; one segment upload dies mid-body on the network and is sent again; at stop the link is
complete and plays from the start to the end with no gap.

Real processes throughout: `framecast serve`, the agent CLI, Debian Chromium, and between the agent and the server a
TCP proxy that cuts the connection carrying segment DROPPED of run 1 halfway through its body.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from browser import browser, collect_errors, screenshot, web_server
from media_clips import video

SECONDS = 180
SPEED = "6"  # the 3-minute file replays in half a minute
DROPPED = 10
TIMEOUT = 240.0


class DroppingProxy:
    """Forwards TCP to `target`; the first connection whose request line is a PUT of segment DROPPED of run 1 is
    cut after half of what it sent so far is forwarded (the agent sees a connection reset mid-upload)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.dropped = 0
        self.pattern = re.compile(rb"PUT /api/v1/recordings/[0-9a-f-]+/live/1/%d " % DROPPED)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, upload: bool) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                if upload and not self.dropped and self.pattern.search(chunk):
                    self.dropped += 1
                    sink.sendall(chunk[: len(chunk) // 2])
                    break
                sink.sendall(chunk)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return video(tmp_path_factory.mktemp("clip") / "talk.mp4", size="640x360", seconds=SECONDS)


@contextlib.contextmanager
def agent(base_url: str, token: str, clip: Path, home: Path) -> Iterator[subprocess.Popen[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMECAST_")}
    env |= {"XDG_CONFIG_HOME": str(home / "config"), "XDG_DATA_HOME": str(home / "data")}
    env |= {"FRAMECAST_SERVER": base_url, "FRAMECAST_TOKEN": token}
    argv = [sys.executable, "-m", "framecast", "record", "--source", str(clip), "--speed", SPEED, "--no-input"]
    with (home / "agent.log").open("w") as log:
        process = subprocess.Popen(
            [*argv, "--title", "Live from the agent"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_for(check: Any, what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_share_link_plays_live_while_the_agent_records_and_whole_after_stop(clip: Path, tmp_path: Path) -> None:
    with web_server(tmp_path) as server, browser() as chromium:
        token = server.token("owner@example.com")
        port = int(server.base_url.rsplit(":", 1)[1])
        proxy = DroppingProxy(("127.0.0.1", port))
        api = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        home = tmp_path / "agent"
        home.mkdir()
        try:
            with agent(f"http://127.0.0.1:{proxy.port}", token, clip, home) as recorder:

                def recording() -> dict[str, Any] | None:
                    items = api.get("/api/v1/recordings", params={"limit": 1}).json()["items"]
                    return items[0] if items and items[0]["playback"]["hls_url"] else None

                live = wait_for(recording, "the recording to have media")
                assert live["status"] in ("RECORDING", "PAUSED")
                viewer = chromium.new_context()
                page = viewer.new_page()
                errors = collect_errors(page)
                page.goto(live["share_url"])
                page.wait_for_selector('.player[data-live="true"]', timeout=30_000)
                page.locator('.player button[aria-label="Play"]').click()
                page.wait_for_function("document.querySelector('video').currentTime > 0", timeout=30_000)
                first = page.evaluate("document.querySelector('video').currentTime")
                time.sleep(4)
                status = api.get(f"/api/v1/recordings/{live['id']}").json()["status"]
                later = page.evaluate("document.querySelector('video').currentTime")
                assert status == "RECORDING", "the recording ended before the viewer could watch it live"
                assert later > first + 2, (first, later)  # the picture moves on while recording goes on
                screenshot(page, "live-share-watching-live")

                out, _ = recorder.communicate(timeout=TIMEOUT)
                assert recorder.returncode == 0, (home / "agent.log").read_text()[-3000:]
            assert out.strip().splitlines()[-1] == live["share_url"]
            assert proxy.dropped == 1  # the network did cut one segment upload

            done = api.get(f"/api/v1/recordings/{live['id']}").json()
            assert done["status"] == "READY"
            assert done["playback"]["live"] is False
            state = api.get(f"/api/v1/recordings/{live['id']}/live").json()
            (run,) = state["runs"]
            assert run["received"] == list(range(run["ended"]))  # every segment, the dropped one included
            assert state["missing"] == []

            # The viewer's page notices by itself; then the whole recording plays from 0 to the end.
            page.wait_for_selector('.player[data-live="false"]', timeout=30_000)
            playlist = httpx.get(done["playback"]["hls_url"].rsplit("/", 1)[0] + "/play/index.m3u8").text
            assert playlist.rstrip().endswith("#EXT-X-ENDLIST")
            segments = [line for line in playlist.splitlines() if line.endswith(".m4s")]
            assert segments == [f"r0001/{index:05d}.m4s" for index in range(run["ended"])]
            durations = [float(line[8:].rstrip(",")) for line in playlist.splitlines() if line.startswith("#EXTINF:")]
            assert sum(durations) == pytest.approx(SECONDS, abs=1.5)

            page.evaluate(
                """() => { const v = document.querySelector('video'); v.muted = true; v.currentTime = 0;
                           v.playbackRate = 16; return v.play(); }"""
            )
            page.wait_for_function("document.querySelector('video').ended", timeout=120_000)
            end = page.evaluate("document.querySelector('video').currentTime")
            assert end == pytest.approx(SECONDS, abs=1.5)
            screenshot(page, "live-share-played-to-the-end")
            assert not errors
        finally:
            proxy.close()
            api.close()
