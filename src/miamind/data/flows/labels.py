"""Label text of flow CSVs: the dash spellings of the released files, normalised to '-'."""

from __future__ import annotations

import re

BENIGN = "BENIGN"

# Spellings of the dash in 'Web Attack \x96 XSS' found in copies of the data, longest first:
# UTF-8 en dash / em dash / U+FFFD / U+0096 read as latin-1, then the single characters
# (cp1252 0x96 decoded as latin-1 is U+0096; decoded as cp1252 it is the en dash U+2013).
_DASH_FORMS = (
    "\u00e2\u0080\u0093",
    "\u00e2\u0080\u0094",
    "\u00ef\u00bf\u00bd",
    "\u00c2\u0096",
    "\u0096",
    "\u2013",
    "\u2014",
    "\ufffd",
)
_SPACES = re.compile(r"\s+")


def normalise_label(raw: str) -> str:
    """Label text with every dash form turned into '-' and runs of spaces collapsed."""
    text = raw
    for form in _DASH_FORMS:
        text = text.replace(form, "-")
    return _SPACES.sub(" ", text).strip()
