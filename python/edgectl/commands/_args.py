"""Argument checking and help text shared by the sub-commands.

Each ``type=`` validator raises :class:`argparse.ArgumentTypeError` with a message that argparse
prefixes with the option's name (``argument --speed: must be a finite number > 0, got 0``), so
every bad command-line value ends in one line and exit status 2, never a traceback.
:func:`plain_text` turns a module docstring (reStructuredText) into plain help text.
"""

from __future__ import annotations

import argparse
import math
import re
import textwrap
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "existing_file",
    "existing_path",
    "finite_float",
    "int_in_range",
    "new_file",
    "not_a_directory",
    "plain_text",
    "positive_float",
    "seed",
]


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def finite_float(text: str) -> float:
    """A finite number (no nan, no inf)."""
    value = _number(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = _number(text)
    if not (math.isfinite(value) and value > 0.0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def nonnegative_float(text: str) -> float:
    """A finite number >= 0."""
    value = _number(text)
    if not (math.isfinite(value) and value >= 0.0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def int_in_range(lo: int, hi: int | None = None) -> Callable[[str], int]:
    """An integer in [lo, hi] (hi None: no upper bound)."""

    def check(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < lo or (hi is not None and value > hi):
            bound = f">= {lo}" if hi is None else f"between {lo} and {hi}"
            raise argparse.ArgumentTypeError(f"must be an integer {bound}, got {text}")
        return value

    check.__name__ = "integer"
    return check


#: a plant seed is an unsigned 64-bit integer (the Rust core's generator)
seed = int_in_range(0, 2**64 - 1)
seed.__name__ = "seed"


def existing_file(text: str) -> Path:
    """A path to a file that exists (not a directory)."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a directory, not a file")
    return path


def existing_path(text: str) -> Path:
    """A file or directory that exists."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file or directory")
    return path


def not_a_directory(text: str) -> str:
    """A file path that is not a directory (a missing file is left to the command to report,
    e.g. the historian's "historian database not found")."""
    if Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a directory, not a file")
    return text


def new_file(text: str) -> Path:
    """A file to create or overwrite: its directory must exist, and it must not be one."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a directory, not a file")
    parent = path.parent
    if not parent.is_dir():
        what = "not a directory" if parent.exists() else "no such directory"
        raise argparse.ArgumentTypeError(f"{text}: {what}: {parent}")
    return path


_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?([^`<]*?)\s*(?:<[^>]*>)?`")
_LITERAL = re.compile(r"``(.+?)``", re.S)
_INTERPRETED = re.compile(r"(?<![`\w])`([^`]+)`(?![`\w])")
_STRONG = re.compile(r"\*\*(.+?)\*\*")


def _strip_markup(text: str) -> str:
    text = _ROLE.sub(lambda m: m.group(1), text)
    text = _LITERAL.sub(lambda m: m.group(1), text)
    text = _INTERPRETED.sub(lambda m: m.group(1), text)
    text = _STRONG.sub(lambda m: m.group(1), text)
    return re.sub(r"(\S)::$", r"\1:", text, flags=re.M)


def plain_text(doc: str | None, width: int = 92) -> str | None:
    """Help text from a reStructuredText docstring: ``literal`` → literal, :mod:`x` → x,
    `x` → x, **x** → x, a literal block's ``::`` → ``:``. A paragraph that lost markup is
    re-wrapped to ``width`` columns; indented blocks and untouched paragraphs keep their lines."""
    if doc is None:
        return None
    out = []
    for para in re.split(r"\n[ \t]*\n", doc.strip("\n")):
        plain = _strip_markup(para)
        lines = para.splitlines()
        indented = all(ln.startswith((" ", "\t")) for ln in lines if ln.strip())
        if plain != para and not indented:
            joined = _strip_markup(" ".join(ln.strip() for ln in lines))
            plain = textwrap.fill(joined, width, break_on_hyphens=False, break_long_words=False)
        out.append(plain)
    return "\n\n".join(out)
