"""The one exception of bad input (SPEC §1): its message names file, sheet, row and what to do."""

from __future__ import annotations


class InputError(Exception):
    """Bad input; the message names file, sheet, row and what to do."""
