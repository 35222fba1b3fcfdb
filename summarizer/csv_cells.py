"""CSV cells that are safe to open in a spreadsheet."""

from __future__ import annotations

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """Text a spreadsheet would run as a formula (=, +, -, @ first) gets a leading apostrophe.

    Result files quote user text (ids, dialogue turns, references, summaries); opened in Excel or
    LibreOffice a cell like `=HYPERLINK(...)` or `=cmd|...` would otherwise be evaluated.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value
