"""How the probe settles a video's frame rate when the header does not say (MediaRecorder's WebM)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction

import pytest

from framecast.adapters.media.probe import _frame_rate


@dataclass
class Packet:
    pts: int | None
    size: int = 1000


@dataclass
class Stream:
    """What the probe reads of a PyAV video stream."""

    average_rate: Fraction | None
    guessed_rate: Fraction | None
    base_rate: Fraction | None
    time_base: Fraction = Fraction(1, 1000)


@dataclass
class Container:
    """A demuxer over fixed packets, remembering that it was rewound."""

    packets: list[Packet]
    seeks: list[int] = field(default_factory=list)

    def demux(self, _stream: Stream) -> Iterator[Packet]:
        return iter(self.packets)

    def seek(self, offset: int) -> None:
        self.seeks.append(offset)


def webm_stamps() -> list[Packet]:
    """30 fps in milliseconds with capture jitter (33 or 34 ms apart), a 1.5 s pause, and a packet with no pts."""
    stamps, t = [], 0
    for n in range(150):
        stamps.append(Packet(t))
        t += 33 if n % 3 else 34
        if n == 60:
            t += 1500
    return [*stamps, Packet(None), Packet(t, size=0)]


def test_a_header_rate_is_taken_as_it_is() -> None:
    stream = Stream(Fraction(30000, 1001), Fraction(1000), Fraction(1000))
    assert _frame_rate(Container([]), stream) == pytest.approx(29.97, abs=0.01)  # type: ignore[arg-type]


def test_without_one_the_rate_is_measured_from_the_packets_not_guessed_from_the_time_base() -> None:
    container = Container(webm_stamps())
    stream = Stream(average_rate=None, guessed_rate=Fraction(1000), base_rate=Fraction(1000))
    assert _frame_rate(container, stream) == pytest.approx(30.3, abs=0.1)  # type: ignore[arg-type]
    assert container.seeks == [0], "the container is rewound for what the probe reads next"


def test_an_implausible_header_rate_is_measured_too() -> None:
    stream = Stream(average_rate=Fraction(1000), guessed_rate=None, base_rate=None)
    assert _frame_rate(Container(webm_stamps()), stream) == pytest.approx(30.3, abs=0.1)  # type: ignore[arg-type]


def test_one_frame_falls_back_to_a_plausible_guess_or_nothing() -> None:
    single = [Packet(0)]
    assert _frame_rate(Container(single), Stream(None, Fraction(25), Fraction(1000))) == 25.0  # type: ignore[arg-type]
    assert _frame_rate(Container(single), Stream(None, Fraction(1000), Fraction(1000))) == 0.0  # type: ignore[arg-type]
