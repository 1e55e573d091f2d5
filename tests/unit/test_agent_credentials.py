"""The agent's login: stored readable by the user only, overridden by the environment."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from framecast.agent import credentials


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_the_login_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = credentials.save(credentials.Login(server="http://fc", token="fc_secret"), folder=tmp_path / "cfg")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert credentials.load(folder=tmp_path / "cfg", env={}) == credentials.Login("http://fc", "fc_secret")


def test_the_environment_overrides_the_stored_login(tmp_path: Path) -> None:
    credentials.save(credentials.Login(server="http://fc", token="stored"), folder=tmp_path)
    env = {"FRAMECAST_SERVER": "http://other/", "FRAMECAST_TOKEN": "fc_env"}
    assert credentials.load(folder=tmp_path, env=env) == credentials.Login("http://other", "fc_env")


def test_no_login_says_how_to_log_in(tmp_path: Path) -> None:
    with pytest.raises(credentials.NotLoggedIn, match="framecast login"):
        credentials.load(folder=tmp_path, env={})


def test_the_spool_is_data_not_configuration() -> None:
    if sys.platform.startswith("linux"):
        assert credentials.spool_dir({"XDG_DATA_HOME": "/data"}) == Path("/data/framecast/spool")
