"""How much subtitle text may be on screen at once, and appear in one second: libass's cost.

libass draws every frame's cues itself, and within the file limits (5 MB, 50,000 cues, 2,000
characters a cue) a file can make that cost far more than the encode. Measured with Debian's
ffmpeg 5.1 / libass 0.17.1 on a 2 s 30 fps clip, CPU seconds (0.35 s without subtitles at 360p,
2.1 s at 1080p):

- libass places each cue against every cue already on screen: 50,000 one-word cues at one
  instant took 93 s and 462 MiB at 360p, 5,000 took 3.8 s.
- Text costs while it stays on screen: 15 cues of 2,000 random CJK characters at <font
  size=120>, on screen for the whole clip, took 42 s and 868 MiB at 360p.
- New text costs its glyphs: 15 new cues of 133 random CJK characters at size 120 every frame
  took 7.0 s at 360p and 16.9 s at 1080p; the same every second, 1.0 s and 4.0 s.

A file over a limit is refused, naming the first instant, rather than merged or thinned out:
what would be drawn there cannot be read anyway (cues pushed out of the frame, text covering it,
or replaced faster than anyone reads), so no output made from it would show what its author
meant, and they would only find out by watching it. Real files stay far below: two or three
cues at once, two lines each, a new cue every second or two.
"""

from __future__ import annotations

import bisect
import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import srt

from pipeline.failures import InvalidSubtitles

# At the default size (1/18 of the picture height, at every resolution) 15 one-line cues fill
# the frame, and libass pushes a 16th out of it (measured at 360p).
MAX_CUES_ON_SCREEN = 15
# One cue at the sanitizer's per-cue cap, or a screen of ordinary cues.
MAX_TEXT_ON_SCREEN = 2_000  # characters, line breaks and tags not counted
# That much text may be replaced once a second: a hundred times reading speed. The worst files
# within all three limits added 1.4 s of CPU to `vidp burn` of a 2 s clip at 360p (2.2 s without
# subtitles) and at 1080p (4.4 s): bench/results/hostile.md.
MAX_TEXT_PER_SECOND = 2_000
_SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class Shown:
    """A cue as the renderer sees it: on screen from ``start`` up to, not including, ``end``."""

    start: timedelta
    end: timedelta
    chars: int  # characters drawn


def check_screen_limits(cues: Sequence[Shown]) -> None:
    """Raise InvalidSubtitles at the first instant over an on-screen limit, else at the text rate's."""
    _check_on_screen(cues)
    _check_text_rate(cues)


def _check_on_screen(cues: Sequence[Shown]) -> None:
    # One sweep over every start (+1) and end (-1), sorted: at equal times an end comes first,
    # so back-to-back cues never overlap, as for libass and players.
    changes = sorted(
        itertools.chain.from_iterable(((cue.start, 1, cue.chars), (cue.end, -1, -cue.chars)) for cue in cues)
    )
    shown = chars = 0
    for when, at_once in itertools.groupby(changes, key=lambda change: change[0]):
        for _, step, length in at_once:
            shown += step
            chars += length
        if shown > MAX_CUES_ON_SCREEN:
            raise InvalidSubtitles(
                f"SRT file has {shown} cues on screen at once at {_timestamp(when)}; "
                f"at most {MAX_CUES_ON_SCREEN} can overlap"
            )
        if chars > MAX_TEXT_ON_SCREEN:
            raise InvalidSubtitles(
                f"SRT file has {chars} characters of text on screen at once at {_timestamp(when)}; "
                f"at most {MAX_TEXT_ON_SCREEN} can be"
            )


def _check_text_rate(cues: Sequence[Shown]) -> None:
    starts = sorted((cue.start, cue.chars) for cue in cues)
    window: deque[tuple[timedelta, int]] = deque()  # the starts less than a second before this one
    chars = 0
    for start, length in starts:
        window.append((start, length))
        chars += length
        while window[0][0] <= start - _SECOND:
            chars -= window.popleft()[1]
        if chars > MAX_TEXT_PER_SECOND:
            first = window[0][0]
            # Every start of that second, including those after this one, for the message.
            end = bisect.bisect_left(starts, (first + _SECOND,))
            total = sum(length for _, length in starts[bisect.bisect_left(starts, (first,)) : end])
            raise InvalidSubtitles(
                f"SRT file has {total} characters of text appearing within one second from "
                f"{_timestamp(first)}; at most {MAX_TEXT_PER_SECOND} can"
            )


def _timestamp(when: timedelta) -> str:
    return str(srt.timedelta_to_srt_timestamp(when))
