"""SubtitleStyle -> libass ``force_style`` overrides, in pixels of the output picture.

The subtitles filter hands SRT to libass as an ASS track whose coordinates are relative to a
384x288 script. Overriding PlayResX/PlayResY with the output size makes every size below a
real pixel size at the output resolution, the same for 360p and 1080p.
"""

from __future__ import annotations

import re

from pipeline.failures import InvalidStyle
from pipeline.models import SubtitleStyle

# force_style writes Alignment into libass's style unconverted, so it takes the legacy SSA
# numbering (left/center/right = 1/2/3, +4 for top, +8 for middle), not the ASS "numpad" one a
# script's own [V4+ Styles] uses (measured with Debian's libass 0.17.1; the test of aligned
# output in tests/integration/test_burn.py fails if a libass update changes this).
_HORIZONTAL = {"left": 1, "center": 2, "right": 3}
_VERTICAL = {"bottom": 0, "top": 4, "middle": 8}
# libass >= 0.17: one box per line in BackColour, and the text keeps its outline.
_BORDER_OUTLINE_AND_SHADOW = 1
_BORDER_BOX = 4
# What may appear in the rendered force_style value: it sits inside single quotes in the
# filtergraph, so quotes, backslashes, colons, brackets and semicolons must never occur.
_SAFE_FORCE_STYLE = re.compile(r"^[A-Za-z0-9 _&=,.\-]+$")


def ass_colour(hex_rgb: str, opacity: float) -> str:
    """#RRGGBB + opacity -> ASS &HAABBGGRR (AA is transparency: 00 opaque, FF invisible)."""
    red, green, blue = hex_rgb[1:3], hex_rgb[3:5], hex_rgb[5:7]
    alpha = round((1.0 - opacity) * 255)
    return f"&H{alpha:02X}{blue}{green}{red}"


def auto_font_size(height: int) -> int:
    """libass's default look: 16 px on a 288-line script, i.e. 1/18 of the picture height."""
    return max(8, round(height / 18))


def force_style(style: SubtitleStyle, width: int, height: int, *, font_name: str | None = None) -> str:
    """The ``force_style`` value for an output of width x height. Raises InvalidStyle."""
    font_size = auto_font_size(height) if style.font_size == "auto" else style.font_size
    outline = style.outline_width if style.outline_width is not None else max(1.0, round(height / 360, 1))
    margin_h = style.margin_horizontal if style.margin_horizontal is not None else round(width * 0.04)
    margin_v = style.margin_vertical if style.margin_vertical is not None else round(height * 0.05)
    boxed = style.background_opacity > 0
    back = (
        ass_colour(style.background_colour, style.background_opacity)
        if boxed
        else ass_colour(style.shadow_colour, style.shadow_opacity)
    )
    fields = [
        ("PlayResX", str(width)),
        ("PlayResY", str(height)),
        ("ScaledBorderAndShadow", "yes"),
        ("FontName", font_name or style.font_family),
        ("FontSize", str(font_size)),
        ("Bold", "-1" if style.bold else "0"),
        ("Italic", "-1" if style.italic else "0"),
        ("PrimaryColour", ass_colour(style.colour, style.opacity)),
        ("OutlineColour", ass_colour(style.outline_colour, 1.0)),
        ("BackColour", back),
        ("BorderStyle", str(_BORDER_BOX if boxed else _BORDER_OUTLINE_AND_SHADOW)),
        ("Outline", f"{outline:g}"),
        ("Shadow", f"{style.shadow_offset:g}"),
        ("Alignment", str(_HORIZONTAL[style.horizontal_align] + _VERTICAL[style.vertical_align])),
        ("MarginL", str(margin_h)),
        ("MarginR", str(margin_h)),
        ("MarginV", str(margin_v)),
    ]
    rendered = ",".join(f"{key}={value}" for key, value in fields)
    # The model's patterns already forbid anything else; this is the last line of defence
    # should a field ever be added without a pattern.
    if not _SAFE_FORCE_STYLE.fullmatch(rendered):
        raise InvalidStyle("subtitle style contains characters that are not allowed")
    return rendered
