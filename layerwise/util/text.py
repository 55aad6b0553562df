"""Untrusted text on its way out: to a terminal (control characters escaped) or into a CSV cell that a
spreadsheet may open (formulas neutralised)."""

import re

# C0 controls but newline and tab, DEL, and C1 controls (0x9b is a one-byte CSI): an escape sequence in a
# class name or file name could retitle the terminal, move the cursor or hide text.
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # OWASP's list for CSV injection


def printable(text):
    """`text` with every control character (except newline and tab) written as \\xNN."""
    return CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def spreadsheet_safe(cell):
    """A text cell that spreadsheets show as text: one starting with = + - @ tab or CR gets a leading
    apostrophe (OWASP's CSV injection advice). Numbers written by layerwise never go through this."""
    return "'" + cell if cell.startswith(FORMULA_START) else cell


def one_line(error, limit=200):
    """What a library's exception says, on one line of at most `limit` characters (NumPy's and Pillow's
    messages can hold newlines; an error: line must stay one line)."""
    return " ".join(str(error).split())[:limit]
