"""`framecast login | record | devices`: the Recording Agent's command line (registered by framecast.cli)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from framecast.agent import credentials
from framecast.agent.capture import CaptureSpec, Platform, Region, Unsupported, current_platform
from framecast.agent.client import Recordings, ServerError, new_http
from framecast.agent.console import drive
from framecast.agent.live import LiveClient
from framecast.agent.recorder import Options, Outcome, Recorder, State
from framecast.agent.recovery import recover
from framecast.agent.spool import Spool
from framecast.agent.tus import TusClient
from framecast.agent.uploader import UploadRefused

err = Console(stderr=True)


def locate_ffmpeg(configured: str | None) -> str:
    """The ffmpeg to capture with: the one asked for, else one on PATH, else the one shipped on PyPI.

    The server's adapters/media/ffmpeg.py follows the same order; the agent keeps its own copy because it imports
    nothing of the server (it may run on a machine with only the agent's dependencies)."""
    if configured:
        return configured
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg  # type: ignore[import-untyped]

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def login(
    server: Annotated[str, typer.Option(help="The framecast server's URL, e.g. https://framecast.example.com.")],
    token: Annotated[str, typer.Option(help="An API token (`framecast token create` on the server).")],
) -> None:
    """Check the token with the server and store both, readable only by you."""

    async def check() -> None:
        async with new_http(server, token) as http:
            await Recordings(http).check_token()

    try:
        asyncio.run(check())
    except ServerError as exc:
        err.print(f"[red]error:[/] the server refused the token: {exc.message}")
        raise typer.Exit(1) from exc
    except httpx.HTTPError as exc:
        err.print(f"[red]error:[/] cannot reach {server}: {exc}")
        raise typer.Exit(1) from exc
    path = credentials.save(credentials.Login(server=server.rstrip("/"), token=token))
    err.print(f"logged in to [bold]{server}[/]; credentials in {path}")


def devices(
    ffmpeg: Annotated[str | None, typer.Option(help="The ffmpeg to ask (default: PATH, then the bundled one).")] = None,
) -> None:
    """List what can be captured: screens, windows, cameras, microphones, system audio."""
    from framecast.agent.devices import list_devices

    table = Table("kind", "id (pass to record)", "name", "detail", box=None)
    for device in list_devices(platform=current_platform(), ffmpeg=locate_ffmpeg(ffmpeg)):
        table.add_row(device.kind, device.id, device.name + (" (default)" if device.default else ""), device.detail)
    Console().print(table)


def record(
    screen: Annotated[bool, typer.Option("--screen", help="Capture the screen.")] = False,
    display: Annotated[str | None, typer.Option(help="X display (Linux), screen index (macOS).")] = None,
    window: Annotated[str | None, typer.Option(help="Capture one window: X window id, or title (Windows).")] = None,
    region: Annotated[str | None, typer.Option(help="Capture a region of the screen: WxH+X+Y.")] = None,
    camera: Annotated[str | None, typer.Option(help="Camera device (see `framecast devices`).")] = None,
    mic: Annotated[
        str | None, typer.Option(help="Microphone (see `framecast devices`; Linux: a PulseAudio source).")
    ] = None,
    system_audio: Annotated[bool, typer.Option("--system-audio", help="Also record what the computer plays.")] = False,
    system_audio_device: Annotated[
        str | None,
        typer.Option(help="The loopback/monitor device for --system-audio (default on Linux: the sink's monitor)."),
    ] = None,
    fps: Annotated[int, typer.Option(help="Frames per second.", min=1, max=120)] = 30,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds of recording.", min=0.5)] = None,
    title: Annotated[str, typer.Option(help="The recording's title.")] = "",
    no_input: Annotated[bool, typer.Option("--no-input", help="No keys: stop with --duration or Ctrl-C.")] = False,
    source: Annotated[Path | None, typer.Option(help="Replay a video file as if it were the capture devices.")] = None,
    speed: Annotated[float, typer.Option(help="With --source: 1 = real time, 0 = as fast as possible.", min=0)] = 1.0,
    upload_after_stop: Annotated[
        bool, typer.Option("--upload-after-stop", help="Send nothing while recording; upload it all at stop.")
    ] = False,
    recover_only: Annotated[
        bool, typer.Option("--recover", help="Only upload recordings a previous run left unfinished, then exit.")
    ] = False,
    ffmpeg: Annotated[
        str | None, typer.Option(help="The ffmpeg to capture with.", envvar="FRAMECAST_FFMPEG_BINARY")
    ] = None,
) -> None:
    """Record, upload while recording, and print the share link as the last line."""
    try:
        login_ = credentials.load()
    except credentials.NotLoggedIn as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    platform = current_platform()
    spec = None
    if not recover_only:
        try:
            spec = _spec(
                platform=platform,
                screen=screen,
                display=display,
                window=window,
                region=region,
                camera=camera,
                mic=mic,
                system_audio=system_audio,
                system_audio_device=system_audio_device,
                fps=fps,
                source=source,
                speed=speed,
            )
        except (ValueError, Unsupported) as exc:
            err.print(f"[red]error:[/] {exc}")
            raise typer.Exit(2) from exc
    interactive = not no_input and sys.stdin.isatty() and duration is None
    code = asyncio.run(
        _record(
            login_,
            spec=spec,
            platform=platform,
            ffmpeg=locate_ffmpeg(ffmpeg),
            title=title,
            duration=duration,
            live=not upload_after_stop,
            interactive=interactive,
        )
    )
    raise typer.Exit(code)


def _spec(
    *,
    platform: Platform,
    screen: bool,
    display: str | None,
    window: str | None,
    region: str | None,
    camera: str | None,
    mic: str | None,
    system_audio: bool,
    system_audio_device: str | None,
    fps: int,
    source: Path | None,
    speed: float,
) -> CaptureSpec:
    if source is not None:
        if not source.is_file():
            raise ValueError(f"--source {source}: no such file")
        return CaptureSpec(source=source, source_speed=speed, fps=fps)
    wants_screen = screen or window is not None or region is not None
    if not (wants_screen or camera or mic or system_audio):
        wants_screen = True  # a bare `framecast record` records the screen, and the microphone when there is one
        mic = _default_mic(platform)
    if platform is Platform.LINUX and wants_screen and display is None:
        display = os.environ.get("DISPLAY")
        if not display:
            raise Unsupported(
                "no X display to capture: set DISPLAY or pass --display (Wayland sessions: use the browser recorder)"
            )
    loopback = system_audio_device
    if system_audio and loopback is None:
        loopback = _default_monitor() if platform is Platform.LINUX else ""
    return CaptureSpec(
        screen=wants_screen,
        display=display,
        window=window,
        region=Region.parse(region) if region else None,
        camera=camera,
        mic=mic,
        system_audio=loopback if system_audio or system_audio_device else None,
        fps=fps,
    )


def _pactl(*args: str) -> str | None:
    try:
        done = subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None


def _default_mic(platform: Platform) -> str | None:
    if platform is Platform.LINUX:
        return "default" if _pactl("get-default-source") else None
    return None


def _default_monitor() -> str:
    sink = _pactl("get-default-sink")
    if sink is None:
        raise Unsupported("no PulseAudio/PipeWire sink found for --system-audio; pass --system-audio-device")
    return f"{sink}.monitor"


async def _record(
    login_: credentials.Login,
    *,
    spec: CaptureSpec | None,
    platform: Platform,
    ffmpeg: str,
    title: str,
    duration: float | None,
    live: bool,
    interactive: bool,
) -> int:
    spool = Spool(credentials.spool_dir())
    async with new_http(login_.server, login_.token) as http:
        recordings, tus, live_ = Recordings(http), TusClient(http), LiveClient(http)
        await _recover_all(spool, recordings=recordings, tus=tus, live=live_)
        if spec is None:
            return 0
        options = Options(
            spec=spec, platform=platform, ffmpeg=ffmpeg, title=title, duration_s=duration, live_upload=live
        )
        recorder = Recorder(options=options, recordings=recordings, tus=tus, live=live_, spool=spool)
        try:
            await recorder.start()
        except (ServerError, httpx.HTTPError) as exc:
            err.print(f"[red]error:[/] could not create the recording on {login_.server}: {exc}")
            return 1
        err.print(f"recording [bold]{recorder.recording_id}[/]" + ("" if interactive else "; Ctrl-C stops"))
        main = asyncio.current_task()
        assert main is not None
        _on_interrupt(recorder, main)
        keys = asyncio.create_task(drive(recorder, err)) if interactive else None
        try:
            outcome = await recorder.run()
        except asyncio.CancelledError:
            err.print(
                "[yellow]interrupted:[/] what was recorded is safe in the spool; "
                "`framecast record --recover` (or the next record) uploads it"
            )
            return 130
        except (UploadRefused, ServerError) as exc:
            err.print(f"[red]error:[/] the server would not take the recording: {exc}")
            return 1
        finally:
            if keys is not None:
                keys.cancel()
    return _report(outcome)


def _report(outcome: Outcome) -> int:
    if outcome.state is State.DONE:
        if outcome.message:
            err.print(outcome.message)
        print(outcome.share_url, flush=True)
        return 0
    err.print(f"[yellow]{outcome.state.value}:[/] {outcome.message}")
    return 1 if outcome.state is State.FAILED else 0


def _on_interrupt(recorder: Recorder, main: asyncio.Task[object]) -> None:
    """The first Ctrl-C (or SIGTERM) stops and uploads; a second leaves at once, the recording kept in the spool."""
    loop = asyncio.get_running_loop()
    presses = 0

    def interrupted() -> None:
        nonlocal presses
        presses += 1
        if presses == 1 and recorder.state in (State.RECORDING, State.PAUSED, State.STARTING):
            err.print("stopping… (Ctrl-C again to leave now and upload later)")
            recorder.stop()
        else:
            main.cancel()

    if sys.platform == "win32":
        signal.signal(signal.SIGINT, lambda *_: loop.call_soon_threadsafe(interrupted))
        return
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, interrupted)


async def _recover_all(spool: Spool, *, recordings: Recordings, tus: TusClient, live: LiveClient) -> None:
    for folder in spool.unreadable():
        err.print(f"[yellow]warning:[/] {folder} holds no readable journal; left as it is")
    for entry in spool.unfinished():
        err.print(f"recovering [bold]{entry.journal.recording_id}[/] ({entry.journal.title or 'untitled'})…")
        try:
            outcome = await recover(entry, recordings=recordings, tus=tus, live=live, say=err.print)
        except (ServerError, UploadRefused, httpx.HTTPError, OSError) as exc:
            err.print(f"[yellow]  not now:[/] {exc}; it stays in the spool for the next start")
            entry.release()
            continue
        if outcome.share_url:
            err.print(f"  recovered: {outcome.share_url}")
        else:
            err.print(f"  {outcome.message}")
