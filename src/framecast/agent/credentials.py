"""Where the agent keeps its server and token (readable by the user only) and its spool.

The platform's own places: on Linux `$XDG_CONFIG_HOME/framecast` and `$XDG_DATA_HOME/framecast/spool`, on macOS
`~/Library/Application Support/framecast`, on Windows `%APPDATA%\\framecast` and `%LOCALAPPDATA%\\framecast\\spool`.
`FRAMECAST_SERVER` and `FRAMECAST_TOKEN` in the environment override the stored login (for scripts and CI).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import click

FILE = "credentials.json"


class NotLoggedIn(Exception):
    def __init__(self) -> None:
        super().__init__("not logged in: run `framecast login --server URL --token TOKEN` first")


@dataclass(frozen=True)
class Login:
    server: str
    token: str


def config_dir() -> Path:
    return Path(click.get_app_dir("framecast"))


def spool_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Local data, not configuration: on Linux under XDG_DATA_HOME, on Windows the local (not roaming) profile."""
    if sys.platform == "win32":
        return Path(click.get_app_dir("framecast", roaming=False)) / "spool"
    if sys.platform == "darwin":
        return config_dir() / "spool"
    data_home = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "framecast" / "spool"


def save(login: Login, *, folder: Path | None = None) -> Path:
    """Store the login in a file only its owner can read (0600, created so from the start: never briefly open)."""
    folder = folder or config_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / FILE
    temporary = folder / f".{FILE}.tmp"
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"server": login.server, "token": login.token}, handle)
    temporary.replace(path)
    return path


def load(*, folder: Path | None = None, env: Mapping[str, str] = os.environ) -> Login:
    """The login to use; raises NotLoggedIn when there is none."""
    server, token = env.get("FRAMECAST_SERVER"), env.get("FRAMECAST_TOKEN")
    if not (server and token):
        try:
            stored = json.loads(((folder or config_dir()) / FILE).read_text(encoding="utf-8"))
            server, token = server or stored["server"], token or stored["token"]
        except (OSError, ValueError, KeyError, TypeError):
            raise NotLoggedIn() from None
    return Login(server=str(server).rstrip("/"), token=str(token))
