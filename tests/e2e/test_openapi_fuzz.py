"""Property-based fuzzing of the REST API from its own OpenAPI schema (schemathesis, against a real server).

Whatever the generated request, the server never answers 5xx, every status it answers is documented, and every
answer matches its documented schema.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from conftest import free_port


def test_the_api_survives_schema_driven_fuzzing(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "FRAMECAST_DATA_DIR": str(tmp_path), "FRAMECAST_PORT": str(port)}
    server = subprocess.Popen(
        [sys.executable, "-m", "framecast", "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/healthz").raise_for_status()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "framecast serve did not start"
                time.sleep(0.1)
        token = server.stdout.readline().strip() if server.stdout else ""
        fuzz = subprocess.run(
            [
                str(Path(sys.executable).with_name("schemathesis")),
                "run",
                f"{base}/api/v1/openapi.json",
                "--header",
                f"Authorization: Bearer {token}",
                "--checks",
                "not_a_server_error,status_code_conformance,response_schema_conformance",
                "--max-examples",
                "25",
                "--seed",
                "20261121",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
        )
        assert fuzz.returncode == 0, fuzz.stdout[-6000:]
        assert " passed" in fuzz.stdout
    finally:
        server.terminate()
        server.communicate(timeout=30)
