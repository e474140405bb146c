"""SRT sanitizer: the caller's bytes in, clean UTF-8 SRT out, safe for ffmpeg's ``subtitles`` filter.

The ``subtitles`` filter probes its file's format (a ".srt" that is an HLS playlist is read as
one), turns SRT tags into ASS override tags with unbounded values (``<font size=N>`` becomes
``{\\fsN}``, ``face`` becomes ``{\\fn...}``) and hands ``{...}`` blocks and ``\\N``-style escapes
to libass. So the file is decoded, parsed with ``srt`` and rebuilt here; ffmpeg only ever sees
the rebuilt text, in which every tag, brace and escape is one this module wrote on purpose.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from datetime import timedelta

import charset_normalizer
import srt
from charset_normalizer.md import mess_ratio

from pipeline.failures import InvalidSubtitles
from pipeline.media.screen_limits import Shown, check_screen_limits

MAX_CUE_TEXT = 2_000  # characters of text per cue; the rest is cut
# ffmpeg's SRT reader splits a line at 4,095 bytes and reads the rest as a new line (which may be
# a timing line or cut a UTF-8 character in two). Once escaped, a character takes at most 4 bytes.
MAX_LINE_CHARS = 500
MAX_CUE_TAGS = 64  # opening tags kept per cue; real subtitles use a handful
MAX_FONT_DEPTH = 8  # nested <font> kept; ffmpeg's own stack stops at 15
MAX_TAG_CHARS = 200  # a <font> with longer attributes is not a real one: dropped
FONT_SIZES = range(8, 121)
# Zero-width and invisible (a Unicode default-ignorable character, so the shaper draws nothing):
# placed next to a character, it stops ffmpeg, libass and srt from reading it as markup.
WORD_JOINER = "\u2060"

_BOMS = (
    # UTF-32 LE first: its BOM FF FE 00 00 starts with the UTF-16 LE BOM FF FE.
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_WIDE_ENCODINGS = ["utf_16_le", "utf_16_be", "utf_32_le", "utf_32_be"]

# (offset, signature, what it is): containers and files ffmpeg's format probe would open as such.
_MAGIC = (
    (4, b"ftyp", "an MP4/MOV video"),
    (4, b"moov", "a QuickTime video"),
    (0, b"\x1a\x45\xdf\xa3", "a Matroska/WebM video"),
    (0, b"RIFF", "a RIFF file (AVI/WAV/WebP)"),
    (0, b"ID3", "an MP3 audio file"),
    (0, b"\xff\xfb", "an MP3 audio file"),
    (0, b"\xff\xf3", "an MP3 audio file"),
    (0, b"\xff\xf2", "an MP3 audio file"),
    (0, b"OggS", "an Ogg file"),
    (0, b"fLaC", "a FLAC audio file"),
    (0, b"FLV\x01", "an FLV video"),
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "an ASF/WMV file"),
    (0, b"\x00\x00\x01\xba", "an MPEG program stream"),
    (0, b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (0, b"\xff\xd8\xff", "a JPEG image"),
    (0, b"GIF87a", "a GIF image"),
    (0, b"GIF89a", "a GIF image"),
    (0, b"%PDF-", "a PDF document"),
    (0, b"PK\x03\x04", "a ZIP archive"),
    (0, b"PK\x05\x06", "a ZIP archive"),
    (0, b"\x1f\x8b", "a gzip archive"),
)
# (first byte of the first packet, packet size): MPEG-TS, M2TS (4-byte timecode prefix), DVB FEC.
_TS_LAYOUTS = ((0, 188), (4, 192), (0, 204))
_TS_PACKETS_CHECKED = 3

# Text formats ffmpeg would recognise and read as something other than SRT.
_TEXT_FORMATS = (
    ("#EXTM3U", "an HLS playlist (#EXTM3U), not SRT"),
    ("ffconcat version", "an ffconcat script, not SRT"),
    ("WEBVTT", "WebVTT, not SRT: convert it to SRT"),
    ("[Script Info]", "an ASS/SSA script, not SRT"),
)

# Control bytes that do not occur in text (tab, LF, CR do): more than a few stray ones and 1% of
# the file means binary data.
_CONTROL_BYTES = bytes([*range(0, 9), 11, 12, *range(14, 32), 127])
_STRAY_CONTROL_BYTES = 16

# charset-normalizer cannot tell Windows-1252 from its Latin siblings on subtitle text: it read
# French "Où" as cp1250 "Oů" or cp1257 "Oł" in our measurements, while Windows-1252 is the usual
# encoding of a non-UTF-8 Latin-script SRT. So Windows-1252 wins when charset-normalizer's own
# mess detector finds it no messier than the best guess plus its default acceptance threshold
# (0.2). Text of another script read as Windows-1252 scores above 1.0 (Polish, Russian, Greek,
# Chinese, Korean measured), so those keep charset-normalizer's guess.
_WESTERN = "cp1252"
_WESTERN_MARGIN = 0.2
_MESS_SAMPLE_CHARS = 100_000  # bounds the mess detector's time on a 5 MB file

# C0 controls except tab and LF, DEL and C1 controls: libass would draw them as boxes or worse.
_CONTROL_CHARS = dict.fromkeys([*range(0, 9), *range(11, 32), *range(127, 160)])

# srt's cue regex backtracks polynomially on long digit and whitespace runs (1,000 digits took
# 6 s, 4,000 took over 7 minutes, measured with srt 3.5.3), so before parsing, whitespace runs
# are cut to 16 characters and a word joiner is put after every 10th digit of a longer run.
# Ten digits keep every timestamp field inside timedelta's range; a longer field no longer
# matches srt's timestamp pattern, so its cue is skipped as unparseable.
_MAX_SPACE_RUN = 16
_LONG_SPACE_RUN = re.compile(rf"[^\S\n]{{{_MAX_SPACE_RUN + 1},}}")
_MAX_DIGIT_RUN = 10
_LONG_DIGIT_RUN = re.compile(rf"[0-9]{{{_MAX_DIGIT_RUN + 1},}}")
_BLANK_LINES = re.compile(r"\n{3,}")
# Even with bounded runs, srt tries its cue regex at every position of text that is not a cue
# (5 MB of short digit lines took 13 s), and such text appears only before the first cue and
# after a line that starts like a timestamp without being a cue's timing line (srt ends the
# previous cue there). So the text before the first timing line is cut (srt skips it anyway)
# and a word joiner starts every such false start, which then stays in its cue's text.
_TIMING = rf"(?:{srt.RGX_TIMESTAMP}) *-[ -] *> *(?:{srt.RGX_TIMESTAMP})"
_FIRST_TIMING_LINE = re.compile(rf"^[^\S\n]*{_TIMING}", re.MULTILINE)
_FALSE_CUE_START = re.compile(rf"^(?={srt.RGX_TIMESTAMP})(?!{_TIMING})", re.MULTILINE)
# srt's separator between the two timestamps: one per cue at most, so counting is a cheap bound.
_ARROW = re.compile(r"-[ -] *>")

# A tag this module wrote: a "<" of the text is always followed by a word joiner (see _Markup).
_WRITTEN_TAG = re.compile(r"<[/a-z][^<>]*>")
# Neither spans lines, so cleaning never joins lines (and MAX_LINE_CHARS holds).
_OVERRIDE_BLOCK = re.compile(r"\{[^{}\n]*\}")
# Possessive quantifiers: a "<" with no ">" after it costs one scan, not a backtracking search.
_TAG = re.compile(r"<[^\S\n]*+(/?)[^\S\n]*+([A-Za-z][A-Za-z0-9]*+)([^<>\n]*+)>")
_SWITCH_TAGS = ("b", "i", "u")
_ATTRIBUTE = re.compile(r"""([A-Za-z-]+)\s*=\s*("[^"]*"|'[^']*'|[^\s"']+)""")
_HEX_COLOUR = re.compile(r"#([0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})")
_NAMED_COLOUR = re.compile(r"[A-Za-z]{1,30}")
_INTEGER = re.compile(r"[+-]?[0-9]+")
# libass reads \N and \n as a line break and \h as a hard space; ffmpeg turns a tag into a
# "{\...}" block, so a backslash just before a tag would escape that block's brace.
_ASS_ESCAPE = re.compile(r"\\(?=[nNh]|\Z)")
# A content line that looks like a cue index followed by a line that starts like a timestamp
# ends the cue for srt's parser: a word joiner at the start of the index-like line keeps the
# cleaned cue whole when the output is parsed again.
_CUE_START = re.compile(rf"^(?=(?:{srt.RGX_INDEX})\s*\n(?:{srt.RGX_TIMESTAMP}))", re.MULTILINE)
# ffmpeg's SRT reader starts a new cue at any line that sscanf reads as "%d:%d:%d,%d --> ..."
# (spaces and a sign allowed before each number), even inside a cue's text: a word joiner first
# keeps such a line text, with the cue's own checked timing.
_FFMPEG_TIMING_LINE = re.compile(r"^(?=[^\S\n]*[-+]?[0-9][^\n]*-->)", re.MULTILINE)


@dataclass(frozen=True)
class CleanSubtitles:
    """A sanitized SRT file and what sanitizing it found."""

    text: str  # clean SRT, UTF-8-safe str, LF newlines, reindexed 1..n, sorted by start
    encoding: str  # detected source encoding, e.g. "utf-8", "utf-8-sig", "utf-16-le", "cp1252"
    cues: int  # number of cues kept
    dropped: int  # cues dropped (empty after cleaning, end <= start)


def sanitize_srt(data: bytes, *, max_bytes: int = 5 * 1024 * 1024, max_cues: int = 50_000) -> CleanSubtitles:
    """Decode, parse and rebuild an SRT file, or raise InvalidSubtitles saying what is wrong with it."""
    _check_size(data, max_bytes)
    _reject_binary_formats(data)
    _reject_text_formats(data.removeprefix(codecs.BOM_UTF8).lstrip()[:32].decode("latin-1"))
    text, encoding = _decode(data)
    text = _normalise(text)
    if not text.strip():
        raise InvalidSubtitles("SRT file is empty: it holds only whitespace")
    _reject_text_formats(text[:64].lstrip())  # again once decoded: a UTF-16 playlist shows only now
    _check_cue_count(text, max_cues)
    parsed = list(srt.parse(_without_false_cue_starts(text), ignore_errors=True))
    if not parsed:
        raise InvalidSubtitles("SRT file is empty: no subtitle cues found")
    kept = [clean for order, cue in enumerate(parsed) if (clean := _clean_cue(cue, order)) is not None]
    if not kept:
        raise InvalidSubtitles(
            f"SRT file is empty: all {len(parsed)} cues were empty or ended before they started"
        )
    check_screen_limits([Shown(cue.start, cue.end, _text_length(cue.content)) for cue in kept])
    return CleanSubtitles(
        text=srt.compose(kept), encoding=encoding, cues=len(kept), dropped=len(parsed) - len(kept)
    )


def _check_size(data: bytes, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise InvalidSubtitles(f"SRT file is {len(data)} bytes, over the limit of {max_bytes} bytes")
    if not data:
        raise InvalidSubtitles("SRT file is empty: 0 bytes")
    if not data.strip():
        raise InvalidSubtitles("SRT file is empty: it holds only whitespace")


def _reject_binary_formats(data: bytes) -> None:
    for offset, magic, what in _MAGIC:
        if data.startswith(magic, offset):
            raise InvalidSubtitles(f"SRT file is {what}, not subtitles")
    for first, size in _TS_LAYOUTS:
        starts = range(first, first + size * _TS_PACKETS_CHECKED, size)
        if len(data) > starts[-1] and all(data[i] == 0x47 for i in starts):
            raise InvalidSubtitles("SRT file is an MPEG transport stream, not subtitles")


def _reject_text_formats(head: str) -> None:
    for signature, what in _TEXT_FORMATS:
        if head[: len(signature)].lower() == signature.lower():
            raise InvalidSubtitles(f"SRT file is {what}")


def _decode(data: bytes) -> tuple[str, str]:
    """Return the text and the name of the encoding it was decoded from."""
    with_bom = _decode_with_bom(data)
    if with_bom is not None:
        return with_bom
    # UTF-16/32 SRT always has NUL bytes (its digits, arrows and newlines are ASCII), and
    # ASCII-only UTF-16 is also valid UTF-8 (NUL is a UTF-8 character), so it is tested first.
    # charset-normalizer finds BOM-less UTF-16/32 LE/BE (tested down to one short cue).
    if b"\x00" in data:
        wide = charset_normalizer.from_bytes(data, cp_isolation=_WIDE_ENCODINGS).best()
        if wide is not None:
            return str(wide), _encoding_name(wide.encoding)
    _reject_control_bytes(data)
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return _decode_legacy(data)


def _decode_with_bom(data: bytes) -> tuple[str, str] | None:
    failed = ""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            failed = encoding.removesuffix("-sig").upper()
            try:
                return codecs.decode(data[len(bom) :], encoding.removesuffix("-sig")), encoding
            except UnicodeDecodeError:
                continue  # FF FE 00 00 may be a UTF-16 LE BOM and a NUL: try the next BOM
    if failed:
        raise InvalidSubtitles(f"SRT file starts with a {failed} byte order mark but is not {failed} text")
    return None


def _reject_control_bytes(data: bytes) -> None:
    # Trailing NULs are padding some tools add to text files, not a sign of binary data.
    body = data.rstrip(b"\x00")
    controls = len(body) - len(body.translate(None, _CONTROL_BYTES))
    if controls > _STRAY_CONTROL_BYTES + len(body) // 100:
        raise InvalidSubtitles(f"SRT file is binary data, not text ({controls} control bytes)")


def _decode_legacy(data: bytes) -> tuple[str, str]:
    best = charset_normalizer.from_bytes(data).best()
    try:
        western: str | None = data.decode(_WESTERN)
    except UnicodeDecodeError:
        western = None
    if western is not None:
        limit = (best.chaos if best is not None else 0.0) + _WESTERN_MARGIN
        if mess_ratio(western[:_MESS_SAMPLE_CHARS], maximum_threshold=1.0) <= limit:
            return western, _WESTERN
    if best is None:
        raise InvalidSubtitles("SRT file is not text in any encoding that could be detected")
    return str(best), _encoding_name(best.encoding)


def _encoding_name(name: str) -> str:
    return name.replace("_", "-")


def _normalise(text: str) -> str:
    """LF newlines, no control characters or trailing spaces, bounded runs and lines (see above)."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    text = text.translate(_CONTROL_CHARS)
    text = _LONG_SPACE_RUN.sub(lambda run: run[0][:_MAX_SPACE_RUN], text)
    text = _LONG_DIGIT_RUN.sub(_break_digit_run, text)
    text = "\n".join(line[:MAX_LINE_CHARS].rstrip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text)


def _break_digit_run(run: re.Match[str]) -> str:
    digits = run[0]
    return WORD_JOINER.join(digits[i : i + _MAX_DIGIT_RUN] for i in range(0, len(digits), _MAX_DIGIT_RUN))


def _without_false_cue_starts(text: str) -> str:
    """The text from its first timing line on, each false cue start made text (see above)."""
    first = _FIRST_TIMING_LINE.search(text)
    return _FALSE_CUE_START.sub(WORD_JOINER, text[first.start() :]) if first else ""


def _check_cue_count(text: str, max_cues: int) -> None:
    cues = len(_ARROW.findall(text))
    if cues > max_cues:
        raise InvalidSubtitles(f"SRT file has {cues} cues, over the limit of {max_cues} cues")


def _text_length(content: str) -> int:
    """Characters of a cleaned cue that get drawn: no tags, word joiners or line breaks."""
    return len(_WRITTEN_TAG.sub("", content)) - content.count(WORD_JOINER) - content.count("\n")


def _clean_cue(cue: srt.Subtitle, order: int) -> srt.Subtitle | None:
    """The cue with clean content, or None when it has no text or no duration."""
    if cue.start < timedelta(0) or cue.end <= cue.start:
        return None
    content = _clean_content(_without_broken_cues(cue.content))
    if not content:
        return None
    # The index is the cue's place in the file: it breaks ties when sorting (srt compares
    # indexes, and a missing one is None) and keeps equal cues in file order.
    return srt.Subtitle(index=order, start=cue.start, end=cue.end, content=content)


def _without_broken_cues(content: str) -> str:
    """The content without the blocks after a blank line that hold a timing arrow."""
    # srt keeps the text after a blank line in the cue when it does not start a new cue, so a
    # cue with a broken timing line would show, index and timing included, in the cue before.
    blocks = content.split("\n\n")
    return "\n\n".join(block for i, block in enumerate(blocks) if i == 0 or not _ARROW.search(block))


def _clean_content(content: str) -> str:
    """Text libass renders literally: known tags rebuilt, override blocks and escapes neutralised."""
    content = _OVERRIDE_BLOCK.sub("", content).replace("{", "").replace("}", "")
    markup = _Markup()
    position = 0
    for tag in _TAG.finditer(content):
        if tag.start() > position:
            markup.add_text(content[position : tag.start()])
        markup.add_tag(closing=tag[1] == "/", name=tag[2].lower(), attributes=tag[3])
        position = tag.end()
    markup.add_text(content[position:])
    if not markup.visible:
        return ""
    # A blank line would end the cue in SRT.
    lines = [line.rstrip() for line in markup.finish().split("\n")]
    text = "\n".join(line for line in lines if line.strip())
    return _CUE_START.sub(WORD_JOINER, _FFMPEG_TIMING_LINE.sub(WORD_JOINER, text))


class _Markup:
    """Rebuilds one cue's markup: only tags this class writes reach the output, always closed."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.text_left = MAX_CUE_TEXT
        self.tags_left = MAX_CUE_TAGS
        self.open: list[str] = []  # written opening tags, in order: "b", "i", "u", "font"
        self.fonts: list[bool] = []  # every <font> seen, open: was it written?
        self.visible = False

    def add_text(self, text: str) -> None:
        text = text[: self.text_left]
        self.text_left -= len(text)
        self.visible = self.visible or bool(text.strip())
        # "<" not starting one of our tags: ffmpeg reads "<x...>" as a tag, "<" + joiner as text.
        text = text.replace("<", "<" + WORD_JOINER)
        self.parts.append(_ASS_ESCAPE.sub("\\\\" + WORD_JOINER, text))

    def add_tag(self, *, closing: bool, name: str, attributes: str) -> None:
        """Write a b/i/u/font tag when it changes something; drop any other tag (its text stays)."""
        if name in _SWITCH_TAGS:
            if closing:
                self._close(name)
            else:
                self._open(name, f"<{name}>")
        elif name == "font" and closing:
            if self.fonts and self.fonts.pop():
                self._close("font")
        elif name == "font":
            self.fonts.append(self._open_font(attributes))

    def finish(self) -> str:
        """The rebuilt markup, every tag still open closed in reverse order."""
        return "".join(self.parts) + "".join(f"</{name}>" for name in reversed(self.open))

    def _open(self, name: str, tag: str) -> bool:
        # ffmpeg treats b, i and u as on/off switches (a second <b> changes nothing); fonts nest.
        if self.tags_left <= 0 or (name in _SWITCH_TAGS and name in self.open):
            return False
        self.tags_left -= 1
        self.open.append(name)
        self.parts.append(tag)
        return True

    def _close(self, name: str) -> None:
        if name in self.open:
            del self.open[len(self.open) - 1 - self.open[::-1].index(name)]
            self.parts.append(f"</{name}>")

    def _open_font(self, attributes: str) -> bool:
        if len(attributes) > MAX_TAG_CHARS or len(self.fonts) >= MAX_FONT_DEPTH:
            return False
        values = _font_attributes(attributes)
        return bool(values) and self._open("font", f"<font{values}>")


def _font_attributes(attributes: str) -> str:
    """The colour and size kept from a <font> tag, normalised, as attribute text; "" if none."""
    colour = size = None
    for match in _ATTRIBUTE.finditer(attributes):
        name, value = match[1].lower(), match[2].strip("\"'").replace(WORD_JOINER, "").strip()
        if name == "color" and colour is None:
            colour = _colour(value)
        elif name == "size" and size is None and _INTEGER.fullmatch(value):
            size = min(max(int(value), FONT_SIZES.start), FONT_SIZES.stop - 1)
    return (f' color="{colour}"' if colour else "") + (f' size="{size}"' if size is not None else "")


def _colour(value: str) -> str | None:
    """#RRGGBB from #RGB or #RRGGBB, a plain colour name as it is, else None."""
    hex_colour = _HEX_COLOUR.fullmatch(value)
    if hex_colour:
        digits = hex_colour[1].upper()
        return "#" + (digits if len(digits) == 6 else "".join(2 * digit for digit in digits))
    return value.lower() if _NAMED_COLOUR.fullmatch(value) else None
