"""User-facing errors: the CLI turns these into one line on stderr and exit code 2."""
from __future__ import annotations


class E2simError(Exception):
    """Bad input from the user (a file, a key, an option). The message names the culprit."""

    exit_code = 2
