"""The agent's spool: journals survive, locks keep two agents off one recording, finished folders go away."""

from __future__ import annotations

import multiprocessing
import os
import struct
from pathlib import Path

import pytest

from framecast.agent import fmp4
from framecast.agent.spool import Journal, Spool, Stage


def box(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def test_a_journal_is_read_back_as_it_was_written(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    entry = spool.create(server="http://fc", recording_id="r1", recording_type="screen", title="Demo")
    run = entry.new_run()
    run.upload_url = "http://fc/api/v1/uploads/abc"
    assert entry.next_seq() == 1
    assert entry.next_seq() == 2
    entry.release()

    (again,) = list(spool.unfinished())
    assert again.journal.recording_id == "r1"
    assert again.journal.title == "Demo"
    assert again.journal.seq == 2, "a restarted agent continues above the seqs it used"
    assert again.journal.runs[0].upload_url == "http://fc/api/v1/uploads/abc"
    assert again.path(again.journal.runs[0]).name == "run-0001.mp4"
    again.release()


def test_a_journal_of_another_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        Journal.from_json('{"version": 99}')


def _holds(root: str) -> bool:
    return any(True for _ in Spool(Path(root)).unfinished())


def test_a_recording_held_by_a_running_agent_is_not_recovered_by_another(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    entry = spool.create(server="http://fc", recording_id="r1", recording_type="screen", title="")
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_holds, (str(tmp_path),)) is False, "another process saw a held recording as abandoned"
        entry.release()  # what dying does to the lock
        assert pool.apply(_holds, (str(tmp_path),)) is True


def test_finished_recordings_are_removed_and_unreadable_ones_left_alone(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    done = spool.create(server="http://fc", recording_id="r1", recording_type="screen", title="")
    done.journal.stage = Stage.DONE
    done.save()
    done.release()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "journal.json").write_text("{not json")

    assert list(spool.unfinished()) == []
    assert not done.folder.exists()
    assert spool.unreadable() == [broken]
    assert broken.exists()


def test_the_journal_is_replaced_whole(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    entry = spool.create(server="http://fc", recording_id="r1", recording_type="screen", title="")
    for _ in range(20):
        entry.new_run()
    assert sorted(os.listdir(entry.folder)) == ["journal.json", "lock"], "no temporary journal is left behind"
    assert len(Journal.from_json((entry.folder / "journal.json").read_text()).runs) == 20
    entry.release()


def test_a_growing_file_is_whole_up_to_its_last_complete_fragment(tmp_path: Path) -> None:
    path = tmp_path / "run.mp4"
    head = box(b"ftyp", b"isom") + box(b"moov", b"\0" * 40)
    fragment = box(b"moof", b"\0" * 24) + box(b"mdat", b"\1" * 1000)
    path.write_bytes(head + fragment + fragment[:30])  # the second moof is only half written

    scan = fmp4.scan(path)
    assert scan.complete == len(head) + len(fragment)
    assert scan.fragments == 1

    path.write_bytes(head + fragment + fragment[:40])  # the moof is whole but its samples are not: not yet
    scan = fmp4.scan(path, since=scan)
    assert scan.complete == len(head) + len(fragment)

    path.write_bytes(head + fragment + fragment)
    scan = fmp4.scan(path, since=scan)
    assert (scan.complete, scan.fragments) == (len(head) + 2 * len(fragment), 2)


def test_garbage_ends_what_is_whole(tmp_path: Path) -> None:
    path = tmp_path / "run.mp4"
    head = box(b"ftyp", b"isom") + box(b"moov")
    path.write_bytes(head + b"\xff" * 64)
    scan = fmp4.scan(path)
    assert scan.corrupt
    assert scan.complete == len(head)


def test_a_missing_file_has_nothing_whole(tmp_path: Path) -> None:
    assert fmp4.scan(tmp_path / "nothing.mp4").complete == 0
