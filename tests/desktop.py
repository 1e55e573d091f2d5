"""A desktop for the agent's end-to-end tests: an Xvfb screen and a PulseAudio null sink playing a tone.

Both come from Debian (`xvfb`, `pulseaudio`; `.ci/run` installs them). Without them the tests skip locally and fail
under CI, like every other real service of the suite.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import media_clips

SINK = "framecast_test"
SCREEN = "1280x720x24"


@dataclass(frozen=True)
class Desktop:
    display: str
    pulse_runtime: Path
    monitor: str  # the sink's monitor: what a microphone on this desktop hears

    @property
    def env(self) -> dict[str, str]:
        return {"DISPLAY": self.display, "PULSE_RUNTIME_PATH": str(self.pulse_runtime)}


def require_programs(*names: str) -> None:
    missing = [name for name in names if shutil.which(name) is None]
    if not missing:
        return
    message = f"{', '.join(missing)} not installed (Debian: apt-get install xvfb pulseaudio pulseaudio-utils)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextlib.contextmanager
def desktop(folder: Path, screen: str = SCREEN) -> Iterator[Desktop]:
    """Start Xvfb (`screen` is WxHxDEPTH), PulseAudio with a null sink, and a 440 Hz tone into that sink; stop them all
    afterwards."""
    require_programs("Xvfb", "pulseaudio", "pactl")
    read, write = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", screen, "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as numbers:
        display = f":{numbers.readline().strip()}"
    runtime = folder / "pulse"
    runtime.mkdir(parents=True)
    env = {**os.environ, "PULSE_RUNTIME_PATH": str(runtime), "DISPLAY": display}
    with (folder / "pulseaudio.log").open("wb") as pulse_log:
        pulse = subprocess.Popen(
            [
                "pulseaudio",
                "--daemonize=no",
                "-n",
                "--exit-idle-time=-1",
                "--disallow-exit",
                "--log-target=stderr",
                "--load=module-native-protocol-unix",
                f"--load=module-null-sink sink_name={SINK}",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=pulse_log,
        )
    tone = None
    try:
        deadline = time.monotonic() + 20
        while subprocess.run(["pactl", "info"], env=env, capture_output=True, check=False).returncode:
            if time.monotonic() > deadline or pulse.poll() is not None:
                pytest.fail(f"PulseAudio did not start: see {folder / 'pulseaudio.log'}")
            time.sleep(0.1)
        tone = subprocess.Popen(
            [
                media_clips.FFMPEG,
                "-hide_banner",
                "-loglevel",
                "error",
                "-re",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=48000",
                "-f",
                "pulse",
                "-device",
                SINK,
                "tone",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
        )
        yield Desktop(display=display, pulse_runtime=runtime, monitor=f"{SINK}.monitor")
    finally:
        for process in (tone, pulse, xvfb):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
