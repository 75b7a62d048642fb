"""Command-line option types both models' command lines use (checked before any data is read,
with a message that names the option)."""

from __future__ import annotations

import argparse


def thread_count(text: str) -> int:
    """--threads: a count >= 1 (checked before any data is read)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value
