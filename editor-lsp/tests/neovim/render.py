"""Renders a `tmux capture-pane -e -p` capture (text with SGR colour escapes) to a PNG, cell
by cell: DejaVu Sans Mono for narrow characters, Noto Sans Mono CJK SC over two cells for wide
ones (needs Pillow, fonts-dejavu and fonts-noto-cjk).

    python3 render.py pane.ansi out.png COLUMNS ROWS
"""
import re
import sys
import unicodedata

from PIL import Image, ImageDraw, ImageFont

SIZE = 17
NARROW = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf", SIZE)
NARROW_BOLD = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf", SIZE)
WIDE = ImageFont.truetype("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", SIZE, index=7)
CELL_W = round(NARROW.getlength("M"))
CELL_H = round(SIZE * 1.4)
PAD = 10
DEFAULT_FG = (0xD4, 0xD4, 0xD4)
DEFAULT_BG = (0x1E, 0x1E, 0x1E)

# xterm's 16 colours, then the 6x6x6 cube and the grey ramp.
BASE = [
    (0, 0, 0), (205, 49, 49), (13, 188, 121), (229, 229, 16), (36, 114, 200), (188, 63, 188), (17, 168, 205), (229, 229, 229),
    (102, 102, 102), (241, 76, 76), (35, 209, 139), (245, 245, 67), (59, 142, 234), (214, 112, 214), (41, 184, 219), (255, 255, 255),
]


def palette(n):
    if n < 16:
        return BASE[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return (steps[n // 36], steps[n // 6 % 6], steps[n % 6])
    g = 8 + (n - 232) * 10
    return (g, g, g)


def cells(line):
    """(char, fg, bg, bold, underline) per character of one captured line."""
    fg, bg, bold, underline, reverse = None, None, False, False, False
    out = []
    for token in re.split(r"(\x1b\[[0-9;:]*m)", line):
        if token.startswith("\x1b["):
            codes = [int(c) if c else 0 for c in re.split("[;:]", token[2:-1])] or [0]
            i = 0
            while i < len(codes):
                c = codes[i]
                if c == 0:
                    fg, bg, bold, underline, reverse = None, None, False, False, False
                elif c == 1:
                    bold = True
                elif c in (4, 21):
                    underline = True
                elif c == 7:
                    reverse = True
                elif c == 22:
                    bold = False
                elif c == 24:
                    underline = False
                elif c == 27:
                    reverse = False
                elif 30 <= c <= 37:
                    fg = palette(c - 30)
                elif 90 <= c <= 97:
                    fg = palette(c - 90 + 8)
                elif 40 <= c <= 47:
                    bg = palette(c - 40)
                elif 100 <= c <= 107:
                    bg = palette(c - 100 + 8)
                elif c == 39:
                    fg = None
                elif c == 49:
                    bg = None
                elif c in (38, 48, 58) and i + 1 < len(codes):
                    if codes[i + 1] == 5:
                        colour = palette(codes[i + 2])
                        i += 2
                    else:
                        colour = tuple(codes[i + 2 : i + 5])
                        i += 4
                    if c == 38:
                        fg = colour
                    elif c == 48:
                        bg = colour
                i += 1
            continue
        for ch in token:
            f, b = fg or DEFAULT_FG, bg or DEFAULT_BG
            if reverse:
                f, b = b, f
            out.append((ch, f, b, bold, underline))
    return out


def main():
    source, target, columns, rows = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    lines = open(source, encoding="utf-8").read().split("\n")[:rows]
    image = Image.new("RGB", (columns * CELL_W + 2 * PAD, rows * CELL_H + 2 * PAD), DEFAULT_BG)
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        col = 0
        y = PAD + row * CELL_H
        for ch, fg, bg, bold, underline in cells(line):
            width = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
            if unicodedata.combining(ch) or col >= columns:
                continue
            x = PAD + col * CELL_W
            draw.rectangle([x, y, x + width * CELL_W - 1, y + CELL_H - 1], fill=bg)
            if ch != " ":
                if width == 2:
                    glyph_w = WIDE.getlength(ch)
                    draw.text((x + (2 * CELL_W - glyph_w) / 2, y + CELL_H / 2), ch, font=WIDE, fill=fg, anchor="lm")
                else:
                    font = NARROW_BOLD if bold else NARROW
                    draw.text((x, y + CELL_H / 2), ch, font=font, fill=fg, anchor="lm")
            if underline:
                draw.line([x, y + CELL_H - 3, x + width * CELL_W - 1, y + CELL_H - 3], fill=fg)
            col += width
    image.save(target, optimize=True)


if __name__ == "__main__":
    main()
