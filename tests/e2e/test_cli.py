"""The `framecast` command line as a user runs it: real processes, real files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from websockets.sync.client import connect

from conftest import free_port
from framecast import __version__


def framecast(*args: str, data_dir: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FRAMECAST_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "framecast", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_version(tmp_path: Path) -> None:
    result = framecast("--version", data_dir=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"framecast {__version__}"


def test_migrate_then_token_create_prints_only_the_token(tmp_path: Path) -> None:
    assert framecast("migrate", data_dir=tmp_path).returncode == 0
    first = framecast("token", "create", "--email", "Ada@Example.com", data_dir=tmp_path)
    second = framecast("token", "create", "--email", "ada@example.com", data_dir=tmp_path)
    assert first.returncode == second.returncode == 0
    tokens = [first.stdout.strip(), second.stdout.strip()]
    assert all(t.startswith("fc_") and "\n" not in t for t in tokens)
    assert tokens[0] != tokens[1]
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_token_create_rejects_a_bad_email(tmp_path: Path) -> None:
    result = framecast("token", "create", "--email", "not-an-email", data_dir=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "not an email address" in result.stderr


def test_serve_prints_the_url_and_a_working_owner_token_on_first_start_only(tmp_path: Path) -> None:
    def start() -> tuple[subprocess.Popen[str], int]:
        port = free_port()
        env = {**os.environ, "FRAMECAST_DATA_DIR": str(tmp_path), "FRAMECAST_PORT": str(port)}
        process = subprocess.Popen(
            [sys.executable, "-m", "framecast", "serve"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    return process, port
            except httpx.TransportError:
                time.sleep(0.1)
        process.kill()
        raise AssertionError(process.communicate()[1])

    def stop(process: subprocess.Popen[str]) -> tuple[str, str]:
        process.send_signal(signal.SIGINT)
        return process.communicate(timeout=30)

    process, port = start()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
        token_line = process.stdout.readline().strip() if process.stdout else ""
        headers = {"Authorization": f"Bearer {token_line}"}
        response = http.get("/api/v1/recordings", headers=headers)
        ws_url = http.post("/api/v1/recordings", headers=headers, json={"recording_type": "audio"}).json()["ws_url"]
    with connect(ws_url) as ws:
        assert json.loads(ws.recv())["type"] == "READY"
    out, err = stop(process)
    assert response.status_code == 200
    assert f"http://127.0.0.1:{port}" in err
    assert "WebSocket /api/v1/recordings/" in err
    assert ws_url.split("ticket=")[1] not in err  # a logged ticket would be a usable credential
    assert process.returncode == 0

    again, _ = start()
    out, err = stop(again)
    assert out.strip() == ""  # not the first start: no new token
