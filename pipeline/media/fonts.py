"""A caller's font file: copied to a fixed name, its family read by fontconfig, validated."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from pipeline.failures import InvalidStyle
from pipeline.processes import die_with_parent

MAX_FONT_BYTES = 50 * 1024 * 1024
_FAMILY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _-]{0,63}$")


def install_font(font_file: Path, fonts_dir: Path) -> str:
    """Copy ``font_file`` into ``fonts_dir`` under a fixed name; return the name to select it by.

    That is the face's full name ("DejaVu Sans Bold"), which libass matches more precisely than
    the family ("DejaVu Sans") when an installed font shares the family. It comes from the file,
    so it is caller data: it must match the same strict pattern as a family given in the style
    before it may be written into the ASS style.
    """
    if not font_file.is_file():
        raise InvalidStyle(f"font file not found: {font_file.name}")
    size = font_file.stat().st_size
    if size == 0 or size > MAX_FONT_BYTES:
        raise InvalidStyle(f"font file {font_file.name} is {size} bytes (allowed: 1 to {MAX_FONT_BYTES})")
    target = fonts_dir / ("custom" + font_file.suffix.lower())
    fonts_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(font_file, target)
    family = font_name(target)
    if family is None:
        raise InvalidStyle(f"font file {font_file.name} is not a readable TrueType/OpenType font")
    if not _FAMILY.fullmatch(family):
        raise InvalidStyle(f"font family name of {font_file.name} has characters that are not allowed")
    return family


def font_name(path: Path) -> str | None:
    """Full name (else family) fontconfig reads from a font file, or None if it is not a font."""
    try:
        done = subprocess.run(
            ["fc-scan", "--format", "%{fullname[0]}|%{family[0]}\\n", str(path)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent(),
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    # One "fullname|family" line per face in the file; the first face is the one used.
    faces = [line.split("|") for line in done.stdout.splitlines() if line.strip()]
    names = [name.strip() for name in (faces[0] if faces else []) if name.strip()]
    return names[0] if done.returncode == 0 and names else None
