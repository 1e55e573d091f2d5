"""The live uploader's decisions: what it sends, in what order, and what it does with each answer the contract allows
(docs/live.md). The server here is a script of answers on an httpx MockTransport; the real server is in
tests/integration/test_agent_live.py."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from framecast.agent.live import LiveClient
from framecast.agent.segments import COMPLETE_ATTEMPTS, PUT_ATTEMPTS, SegmentUploader
from framecast.agent.spool import Entry, Spool
from framecast.agent.uploader import UploadRefused

pytestmark = pytest.mark.anyio
PREFIX = "/api/v1/recordings/rec/live/"


def box(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def run_file(fragments: int, *, seed: int = 0) -> tuple[bytes, list[bytes]]:
    init = box(b"ftyp", b"isom") + box(b"moov", bytes([seed]) * 40)
    segments = [box(b"moof", bytes([seed, i]) * 12) + box(b"mdat", bytes([i]) * 500) for i in range(fragments)]
    return init, segments


class Script:
    """A server that keeps what it is sent and answers as docs/live.md says, unless `answers` says otherwise for a
    request (by method and path after /live/): a list of (status, code), or None for the usual answer, taken one per
    request.

    The uploader declares completion twice: early, while its last pieces are on their way, and again once every piece
    has settled (unless the early answer said READY). `missing_once` is what the first completion that comes after
    every run has been ended says is missing."""

    def __init__(self, *, answers: dict[tuple[str, str], list[tuple[int, str] | None]] | None = None) -> None:
        self.answers = answers or {}
        self.stored: dict[str, bytes] = {}
        self.ended: dict[int, int] = {}
        self.requests: list[tuple[str, str]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.state: dict[str, Any] | None = None  # the answer to GET /live, when the test sets one
        self.missing_once: list[dict[str, Any]] = []  # what the first complete after every run's end says is missing
        self.missing_always: list[dict[str, Any]] = []  # what every complete says is missing
        self.status = "UPLOADING"  # what every answer says the recording is
        self.declared: int | None = None  # the runs of the last completion taken
        self.completions = 0

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url="http://fc", transport=httpx.MockTransport(self.handle))

    async def handle(self, request: httpx.Request) -> httpx.Response:
        where = request.url.path.removeprefix(PREFIX).removeprefix(PREFIX.rstrip("/"))
        self.requests.append((request.method, where))
        counted = request.method == "PUT"
        self.in_flight += counted
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            scripted = self.answers.get((request.method, where))
            if scripted and (answer := scripted.pop(0)) is not None:
                status, code = answer
                return httpx.Response(status, json={"error": {"code": code, "message": f"scripted {code}"}})
            return self.answer(request, where)
        finally:
            self.in_flight -= counted

    def answer(self, request: httpx.Request, where: str) -> httpx.Response:
        if request.method == "PUT":
            body = request.content
            digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
            assert request.headers["Content-Digest"] == f"sha-256=:{digest}:"
            duplicate = self.stored.get(where) == body
            self.stored[where] = body
            run, piece = where.split("/")
            index = None if piece == "init" else int(piece)
            out = {"run": int(run), "index": index, "size": len(body), "duration_ms": None, "duplicate": duplicate}
            return httpx.Response(200 if duplicate else 201, json=out)
        if request.method == "POST" and where.endswith("/end"):
            self.ended[int(where.split("/")[0])] = json.loads(request.content)["segments"]
            return httpx.Response(200, json=self.live_state())
        if request.method == "POST" and where == "complete":
            if not any(piece.endswith("/init") for piece in self.stored):
                error = {"code": "nothing_recorded", "message": "no init segment arrived"}
                return httpx.Response(409, json={"error": error})
            self.declared = json.loads(request.content)["runs"]
            self.completions += 1
            state = self.live_state()
            if self.missing_once and len(self.ended) >= self.declared:
                state["missing"], self.missing_once = self.missing_once, []
            state["missing"] = state["missing"] or self.missing_always
            return httpx.Response(200, json=state)
        if request.method == "GET":
            return httpx.Response(200, json=self.state or self.live_state())
        return httpx.Response(404)

    def live_state(self) -> dict[str, Any]:
        return {"status": self.status, "runs": [], "declared_runs": None, "missing": [], "complete": False}

    def puts(self) -> list[str]:
        return [where for method, where in self.requests if method == "PUT"]


def spooled(tmp_path: Path, *runs: tuple[bytes, list[bytes]]) -> Entry:
    """A closed recording in the spool, one file per run."""
    entry = Spool(tmp_path).create(server="http://fc", recording_id="rec", recording_type="screen", title="", live=True)
    for init, segments in runs:
        run = entry.new_run()
        data = init + b"".join(segments) if segments else init
        entry.path(run).write_bytes(data)
        run.closed, run.length = True, len(data) if segments else 0
    entry.save()
    return entry


async def finish(entry: Entry, script: Script, **options: Any) -> str:
    try:
        async with script.client() as http:
            return await SegmentUploader(entry=entry, live=LiveClient(http), recording_id="rec", **options).finish()
    finally:
        entry.release()


async def test_each_run_goes_init_first_then_its_segments_and_is_ended_with_its_count(tmp_path: Path) -> None:
    (init1, segments1), (init2, segments2) = run_file(3), run_file(2, seed=1)
    entry = spooled(tmp_path, (init1, segments1), (init2, segments2))
    script = Script()
    assert await finish(entry, script) == "rec"
    assert script.stored == {
        "1/init": init1, "1/0": segments1[0], "1/1": segments1[1], "1/2": segments1[2],
        "2/init": init2, "2/0": segments2[0], "2/1": segments2[1],
    }  # fmt: skip
    order = [where for _, where in script.requests]
    for run, count in ((1, 3), (2, 2)):
        assert order.index(f"{run}/init") < min(order.index(f"{run}/{i}") for i in range(count))
    assert script.ended == {1: 3, 2: 2}
    assert script.declared == 2
    assert script.most_in_flight <= 2


async def test_completion_is_declared_while_the_last_pieces_are_on_their_way_and_asked_again_once_they_land(
    tmp_path: Path,
) -> None:
    entry = spooled(tmp_path, run_file(4))
    script = Script()
    await finish(entry, script)
    order = [where for _, where in script.requests]
    assert order.index("1/end") < order.index("1/3"), "the run is ended before its last segment is sent"
    assert order.index("complete") < order.index("1/3"), "so the server is READY the moment the last one lands"
    assert order.count("complete") == 2
    assert order[-1] == "complete", "the answer that counts comes once every piece has settled"


async def test_an_early_completion_answered_ready_is_not_asked_again(tmp_path: Path) -> None:
    """A resumed upload the server already holds whole: nothing is sent, and one completion is all it takes."""
    entry = spooled(tmp_path, run_file(1))
    script = Script()
    script.stored["1/init"] = b"held"
    script.status = "READY"
    held = {"run": 1, "init": True, "segments": 1, "received": [0], "ended": 1}
    script.state = {"status": "READY", "runs": [held], "declared_runs": 1, "missing": [], "complete": True}
    await finish(entry, script, resume=True)
    assert script.puts() == []
    assert script.requests.count(("POST", "complete")) == 1


async def test_a_run_with_no_whole_fragment_is_ended_with_zero_and_sends_no_init(tmp_path: Path) -> None:
    entry = spooled(tmp_path, run_file(2), run_file(0, seed=1))
    script = Script()
    await finish(entry, script)
    assert "2/init" not in script.stored
    assert script.ended == {1: 2, 2: 0}


async def test_nothing_captured_is_refused_before_completing(tmp_path: Path) -> None:
    entry = spooled(tmp_path, run_file(0))
    script = Script()
    with pytest.raises(UploadRefused, match="nothing was captured"):
        await finish(entry, script)
    assert script.declared is None, "the server took no completion"


async def test_a_segment_refused_as_corrupt_is_read_again_and_resent(tmp_path: Path) -> None:
    init, segments = run_file(3)
    entry = spooled(tmp_path, (init, segments))
    corrupt = (400, "segment_corrupt")
    script = Script(answers={("PUT", "1/1"): [corrupt, corrupt]})
    await finish(entry, script)
    assert script.puts().count("1/1") == 3
    assert script.stored["1/1"] == segments[1]


async def test_a_segment_corrupt_every_time_is_given_up_on(tmp_path: Path) -> None:
    entry = spooled(tmp_path, run_file(2))
    script = Script(answers={("PUT", "1/1"): [(400, "segment_corrupt")] * PUT_ATTEMPTS})
    with pytest.raises(UploadRefused, match="segment 1 of run 1"):
        await finish(entry, script)
    assert script.puts().count("1/1") == PUT_ATTEMPTS
    assert script.completions <= 1, "only the early declaration, which cannot make it READY with a segment missing"


async def test_a_missing_init_segment_is_sent_before_the_segment_again(tmp_path: Path) -> None:
    entry = spooled(tmp_path, run_file(1))
    script = Script(answers={("PUT", "1/0"): [(409, "init_missing")]})
    await finish(entry, script)
    assert script.puts() == ["1/init", "1/0", "1/init", "1/0"]


@pytest.mark.parametrize("code", ["segment_conflict", "not_accepting_segments"])
async def test_conflicts_are_not_retried(tmp_path: Path, code: str) -> None:
    entry = spooled(tmp_path, run_file(3))
    script = Script(answers={("PUT", "1/0"): [(409, code)]})
    with pytest.raises(UploadRefused, match=f"scripted {code}"):
        await finish(entry, script)
    assert script.puts().count("1/0") == 1


async def test_server_errors_and_dropped_connections_are_retried(tmp_path: Path) -> None:
    entry = spooled(tmp_path, run_file(2))
    script = Script(answers={("PUT", "1/1"): [(503, "unavailable")], ("POST", "complete"): [(502, "bad_gateway")]})
    await finish(entry, script, on_retry=lambda _exc, _wait: None)
    assert script.puts().count("1/1") == 2
    assert script.completions == 2, "the early declaration retried after the 502, and the final one"


async def test_what_completion_says_is_missing_is_sent_again_from_the_spool(tmp_path: Path) -> None:
    (init1, segments1), (init2, segments2) = run_file(3), run_file(2, seed=1)
    entry = spooled(tmp_path, (init1, segments1), (init2, segments2))
    script = Script()
    script.missing_once = [{"run": 1, "index": 2}, {"run": 2, "index": None}]
    await finish(entry, script)
    finals = [i for i, request in enumerate(script.requests) if request == ("POST", "complete")]
    after = script.requests[finals[1] + 1 :]
    assert sorted(after) == sorted(
        [("PUT", "1/2"), ("PUT", "2/init"), ("PUT", "2/0"), ("PUT", "2/1"), ("POST", "2/end"), ("POST", "complete")]
    ), "a missing segment is sent again; a run the server does not know at all is sent whole and ended"
    assert after[-1] == ("POST", "complete")


async def test_a_server_that_keeps_missing_segments_is_given_up_on(tmp_path: Path) -> None:
    entry = spooled(tmp_path, run_file(2))
    script = Script()
    script.missing_always = [{"run": 1, "index": 1}]
    with pytest.raises(UploadRefused, match="still misses"):
        await finish(entry, script)
    assert script.requests.count(("POST", "complete")) == 1 + COMPLETE_ATTEMPTS + 1  # the early one, then the rounds
    assert script.puts().count("1/1") == COMPLETE_ATTEMPTS + 1


async def test_a_completion_whose_answer_was_lost_is_taken_as_done_once_the_server_is_ready(tmp_path: Path) -> None:
    entry = spooled(tmp_path, run_file(1))
    script = Script(answers={("POST", "complete"): [None, (409, "not_accepting_segments")]})
    script.state = {"status": "READY", "runs": [], "declared_runs": 1, "missing": [], "complete": True}
    assert await finish(entry, script) == "rec"


async def test_resuming_sends_only_what_the_server_does_not_hold(tmp_path: Path) -> None:
    entry = spooled(tmp_path, run_file(4), run_file(2, seed=1))
    script = Script()
    script.state = {
        "status": "UPLOADING",
        "runs": [
            {"run": 1, "init": True, "segments": 2, "received": [0, 1, 3], "ended": None},
            {"run": 2, "init": False, "segments": 0, "received": [], "ended": None},
        ],
        "declared_runs": None,
        "missing": [],
        "complete": False,
    }
    uploader_sent: list[int] = []
    async with script.client() as http:
        uploader = SegmentUploader(entry=entry, live=LiveClient(http), recording_id="rec", resume=True)
        await uploader.finish()
        uploader_sent.append(uploader.sent)
    entry.release()
    assert sorted(script.puts()) == ["1/2", "2/0", "2/1", "2/init"]
    assert script.ended == {1: 4, 2: 2}
    assert uploader_sent == [sum(path.stat().st_size for path in entry.folder.glob("run-*.mp4"))]


async def test_a_growing_run_is_sent_fragment_by_fragment_while_it_is_captured(tmp_path: Path) -> None:
    init, segments = run_file(3)
    entry = Spool(tmp_path).create(server="http://fc", recording_id="rec", recording_type="screen", title="")
    run = entry.new_run()
    path = entry.path(run)
    script = Script()
    async with script.client() as http:
        uploader = SegmentUploader(entry=entry, live=LiveClient(http), recording_id="rec")
        uploader.follow(run)

        async def until(condition: Callable[[], bool]) -> None:
            async with asyncio.timeout(5):
                while not condition():  # noqa: ASYNC110
                    await asyncio.sleep(0.01)

        def append(data: bytes) -> None:  # as ffmpeg writes: only ever appending, never rewriting
            with path.open("ab") as capture:
                capture.write(data)

        whole = init + b"".join(segments)
        append(whole[: len(init) + 20])
        await asyncio.sleep(0.6)
        assert script.puts() == [], "nothing is whole yet: the init segment waits for the first segment"
        append(whole[len(init) + 20 : len(init) + len(segments[0]) + 30])
        await until(lambda: uploader.sent == len(init) + len(segments[0]))
        assert script.puts() == ["1/init", "1/0"], "a whole segment goes at once, the one still growing waits"
        append(whole[len(init) + len(segments[0]) + 30 :])
        run.closed, run.length = True, path.stat().st_size
        uploader.closed(run)
        await uploader.finish()
    entry.release()
    puts = script.puts()
    assert puts[:2] == ["1/init", "1/0"]
    assert sorted(puts[2:]) == ["1/1", "1/2"]  # the last two went up side by side, two at a time
    assert script.ended == {1: 3}
