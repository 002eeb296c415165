"""Every line of the README's "Live tuning from the REPL" block runs against the shipped config
over the socket: lines shown without a traceback succeed, lines shown with one raise that
error with that message (the user name aside)."""

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
            else:
                exec(stmt, namespace)
        namespace["r"].close()
    finally:
        run.close()
