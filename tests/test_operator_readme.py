"""Every line of the README's "Live tuning from the REPL" block runs against the shipped config
over the socket: lines shown without a traceback succeed, lines shown with one raise that
error with that message (the user name aside), and an expression shown with its output prints
that output (numbers, column padding and ``...`` lines aside: the run's values differ)."""

from __future__ import annotations

import getpass
import os
import pwd
import re
from pathlib import Path
from typing import Any

import pytest

import edgectl
import edgectl.remote
from edgectl.operator import UserStore
from edgectl.runtime.build import open_run

ROOT = Path(__file__).resolve().parents[1]
ME = pwd.getpwuid(os.getuid()).pw_name
PASSWORD = "readme password"


def readme_examples() -> list[tuple[str, str]]:
    """(statement, expected output) of each ``>>>`` line of the REPL section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Live tuning from the REPL") :]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None
    examples: list[tuple[str, str]] = []
    for line in block.group(1).splitlines():
        if line.startswith(">>> "):
            examples.append((line[4:], ""))
        elif examples:
            stmt, out = examples[-1]
            examples[-1] = (stmt, out + line + "\n")
    return examples


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def output_pattern(expected: str) -> re.Pattern[str]:
    """``expected`` as a regex: any number where it shows one, any run of spaces where it shows
    spaces, any lines where it shows a line ``...``; the README's user ``lab`` is this user."""
    parts: list[str] = []
    for line in expected.splitlines():
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
            continue
        line = re.sub(r"\blab\b", ME, line)
        pieces = []
        at = 0
        for m in _NUMBER.finditer(line):
            pieces.append(re.escape(line[at : m.start()]))
            pieces.append(r"(?:-?\d+(?:\.\d+)?(?:e[-+]?\d+)?|nan|-?inf)")
            at = m.end()
        pieces.append(re.escape(line[at:]))
        parts.append(re.sub(r"(?:\\ )+", " +", "".join(pieces)) + r"\n")
    return re.compile("".join(parts))


def test_output_pattern_matches_other_values_only() -> None:
    pat = output_pattern("loops (PV, SP, OUT, mode):\n  ph  PV ph=6.999 (good)  OUT 0.01\n")
    assert pat.fullmatch("loops (PV, SP, OUT, mode):\n  ph    PV ph=7.2 (good)  OUT -3\n")
    assert not pat.fullmatch("loops (PV, SP, OUT, mode):\n  ph  PV ph=7.2 (bad)  OUT 1\n")
    assert output_pattern("tags (2):\n  a 1\n  ...\n").fullmatch("tags (9):\n  a 1\n  b 2\n  c 3\n")


def _is_expression(stmt: str) -> bool:
    try:
        compile(stmt, "<readme>", "eval")
    except SyntaxError:
        return False
    return True


class _Tty:
    def isatty(self) -> bool:
        return True


def test_every_repl_example_of_the_readme_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    UserStore(tmp_path / "runs" / "ecoli-2L.users").add(ME, "admin", PASSWORD)
    # the e-signature prompts of a terminal, answered
    monkeypatch.setattr(edgectl.remote.sys, "stdin", _Tty())
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": PASSWORD)
    run = open_run(ROOT / "examples" / "ecoli-fedbatch-2L.toml", speed=1200.0)
    namespace: dict[str, Any] = {}
    examples = readme_examples()
    assert len(examples) > 20
    try:
        run.run(3600.0)
        for stmt, expected in examples:
            if "Traceback" in expected:
                name, _, message = expected.strip().splitlines()[-1].partition(": ")
                with pytest.raises(Exception) as err:  # noqa: PT011 (checked just below)
                    exec(stmt, namespace)
                assert type(err.value).__name__ == name, stmt
                assert str(err.value) == message.replace("user lab", f"user {ME}").replace(
                    "by lab", f"by {ME}"
                ), stmt
            elif _is_expression(stmt):  # the REPL prints its repr unless it is None
                value = eval(stmt, namespace)
                if not expected:
                    assert value is None, f"{stmt} shows nothing but returns {value!r}"
                    continue
                shown = repr(value) + "\n"
                assert output_pattern(expected).fullmatch(shown), f"{stmt}\n{shown}"
            else:
                exec(stmt, namespace)
                assert not expected, f"{stmt} shows an output but is not an expression"
        namespace["r"].close()
    finally:
        run.close()
