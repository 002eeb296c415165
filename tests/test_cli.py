"""Command-line hygiene: every bad argument ends in one line naming it and exit status 2 (never a
traceback), errors of a command in one line ``edgectl CMD: error: ...``, a closed pipe ends
quietly, a missing ``--db`` directory is an error, and help texts are plain text."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgectl import cli
from edgectl.commands import _args
from edgectl.historian import Historian

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ecoli-fedbatch-2L.toml"


def fail(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI in-process on a bad command line: exit status 2, the error's last line."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def run_args(tmp_path: Path, config: Path = EXAMPLE) -> list[str]:
    """``edgectl run CONFIG`` with the historian and socket in ``tmp_path``."""
    return ["run", str(config), "--db", str(tmp_path / "r.db"), "--socket", str(tmp_path / "s")]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--speed", "0", "argument --speed: must be a finite number > 0, got 0"),
        ("--speed", "-600", "argument --speed: must be a finite number > 0, got -600"),
        ("--speed", "nan", "argument --speed: must be a finite number > 0, got nan"),
        ("--speed", "inf", "argument --speed: must be a finite number > 0, got inf"),
        ("--speed", "fast", "argument --speed: not a number: 'fast'"),
        ("--duration", "-1", "argument --duration: must be a finite number > 0, got -1"),
        ("--duration", "0", "argument --duration: must be a finite number > 0, got 0"),
        ("--duration", "inf", "argument --duration: must be a finite number > 0, got inf"),
        ("--seed", "-1", "argument --seed: must be an integer between 0 and"),
        ("--seed", str(2**64), "argument --seed: must be an integer between 0 and"),
        ("--seed", "1.5", "argument --seed: not an integer: '1.5'"),
        ("--on-restart", "later", "argument --on-restart: invalid choice: 'later'"),
    ],
)
def test_run_refuses_bad_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    line = fail([*run_args(tmp_path), option, value], capsys)
    assert line.startswith("edgectl run: error: ")
    assert message in line
    assert not (tmp_path / "r.db").exists()  # refused before anything was opened


def test_run_db_in_a_missing_directory_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nonexistent"
    line = fail(["run", str(EXAMPLE), "--db", str(missing / "x.db"), "--duration", "1"], capsys)
    assert f"argument --db: {missing / 'x.db'}: no such directory: {missing}" in line
    assert not missing.exists()
    line = fail([*run_args(tmp_path), "--socket", str(missing / "x.sock")], capsys)
    assert f"argument --socket: {missing / 'x.sock'}: no such directory" in line
    assert not missing.exists()
    line = fail(["run", str(EXAMPLE), "--db", str(tmp_path)], capsys)
    assert f"argument --db: {tmp_path}: is a directory, not a file" in line


def test_run_config_must_be_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = fail(["run", str(tmp_path / "none.toml")], capsys)
    assert f"argument config: {tmp_path / 'none.toml'}: no such file" in line
    line = fail(["run", str(tmp_path)], capsys)
    assert f"argument config: {tmp_path}: is a directory, not a file" in line


def test_a_bad_config_is_one_line_and_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[reactor\n", encoding="utf-8")
    assert cli.main(run_args(tmp_path, bad)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"edgectl run: error: {bad}: TOML syntax error")


@pytest.fixture
def historian_file(tmp_path: Path) -> Path:
    """A small historian: 3000 scans of three tags."""
    path = tmp_path / "h.db"
    with Historian(path) as h:
        h.start_run(config_hash="sha256:test")
        for i in range(3000):
            h.record_scan(1000.0 + i, {"temp_c": 37.0 + i * 1e-4, "ph": 7.0, "do_pct": 30.0})
    return path


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["history", "runs", "{tmp}"], "argument db: {tmp}: is a directory, not a file"),
        (
            ["history", "export", "{db}", "-o", "{tmp}/nodir/x.csv"],
            "argument -o/--output: {tmp}/nodir/x.csv: no such directory: {tmp}/nodir",
        ),
        (["history", "export", "{db}", "-o", "-", "--start", "nan"], "argument --start: must be"),
        (["history", "export", "{db}", "-o", "-", "--layout", "tall"], "argument --layout"),
        (["audit", "show", "{tmp}"], "argument db: {tmp}: is a directory, not a file"),
        (["audit", "show", "{db}", "--last", "0"], "argument --last: must be an integer >= 1"),
        (["profiles", "check", "{tmp}/none"], "argument path: {tmp}/none: no such file or dir"),
        (["demo", "--seed", "-3"], "argument --seed: must be an integer between 0 and"),
        (["emulate", "atlas-scientific/ezo-ph", "--tcp", "70000"], "argument --tcp: must be"),
        (["emulate", "atlas-scientific/ezo-ph", "--plant", "{tmp}/p.toml"], "argument --plant"),
        (["rig", "{tmp}/none.toml"], "argument config: {tmp}/none.toml: no such file"),
        (["rig", str(EXAMPLE), "--speed", "0"], "argument --speed: must be a finite number > 0"),
        (["rig", str(EXAMPLE), "--fault-schedule", "{tmp}"], "argument --fault-schedule: {tmp}"),
        (
            ["calibrate", "{tmp}/s.csv", "{tmp}/r.csv", "-o", "m.json"],
            "argument SPECTRA: {tmp}/s.csv: no such file",
        ),
        (["calibrate", "{db}", "{db}", "-o", "{tmp}/no/m.json"], "argument -o/--output"),
        (["calibrate", "{db}", "{db}", "-o", "{tmp}/m.json", "--despike", "inf"], "--despike"),
        (["calibrate", "{db}", "{db}", "-o", "{tmp}/m.json", "--components", "0"], "--compon"),
        (["calibrate", "{db}", "{db}", "-o", "{tmp}/m.json", "--tolerance", "-1"], "--toleran"),
    ],
)
def test_every_command_refuses_bad_arguments(
    tmp_path: Path,
    historian_file: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    def fill(s: str) -> str:
        return s.replace("{tmp}", str(tmp_path)).replace("{db}", str(historian_file))

    line = fail([fill(a) for a in argv], capsys)
    assert line.startswith(f"edgectl {argv[0]}")
    assert ": error: " in line
    assert fill(message) in line


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["history", "tags", "{junk}"], "{junk}: not a SQLite database"),
        (["history", "tags", "{junk}.x"], "{junk}.x: historian database not found"),
        (["audit", "verify", "{junk}"], "{junk}: not a SQLite database"),
        (["history", "export", "{db}", "-o", "-", "--start", "5", "--end", "1"], "--start 5 is"),
        (["emulate", "no-such/device", "--tcp", "0"], "no-such/device: no such firmware profile"),
        (["rig", str(EXAMPLE), "--fault-schedule", "{junk}"], "{junk}: TOML syntax error"),
    ],
)
def test_command_errors_are_one_line_with_status_2(
    tmp_path: Path,
    historian_file: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all, not at all" * 10)

    def fill(s: str) -> str:
        return s.replace("{junk}", str(junk)).replace("{db}", str(historian_file))

    assert cli.main([fill(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"edgectl {argv[0]}: error: ")
    assert fill(message) in err


# TcpServer leaves its socket to the garbage collector when bind fails (a ResourceWarning)
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_os_error_of_a_command_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert cli.main(["emulate", "atlas-scientific/ezo-ph", "--tcp", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("edgectl emulate: error: ")
    assert "in use" in err


def test_an_os_error_names_its_file() -> None:
    exc = PermissionError(13, "Permission denied", "/srv/run.db")
    assert cli._describe(exc) == "/srv/run.db: Permission denied"
    assert cli._describe(OSError(98, "Address already in use")) == "Address already in use"
    assert cli._describe(ValueError("a\n  b")) == "a; b"


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from _parsers(sub)


def test_help_texts_are_plain_text() -> None:
    helps = {p.prog: p.format_help() for p in _parsers(cli.build_parser())}
    assert {"edgectl run", "edgectl rig", "edgectl history export", "edgectl audit show"} <= set(
        helps
    )
    for prog, text in helps.items():
        assert "`" not in text, f"{prog} --help shows markup:\n{text}"
        for role in (":mod:", ":func:", ":class:", ":meth:"):
            assert role not in text, prog
    assert "--duration hours of clock" in helps["edgectl run"].replace("\n", " ")
    assert "edgectl.historian.export" in helps["edgectl history"]


def test_help_into_a_closed_pipe_is_quiet() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "edgectl.cli", "run", "--help"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        proc.stdout.close()  # nothing reads: the first write hits a closed pipe
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=60) in (0, cli.EXIT_BROKEN_PIPE)
    assert err == ""


def test_export_into_a_closed_pipe_ends_quietly(historian_file: Path) -> None:
    """``edgectl history export DB -o - | head -1``: no BrokenPipeError, status 141."""
    with subprocess.Popen(
        [sys.executable, "-m", "edgectl.cli", "history", "export", str(historian_file), "-o", "-"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        header = proc.stdout.readline()
        assert b"," in header
        proc.stdout.close()  # what `head -1` does: 9000 rows (~300 kB) are still to be written
        err = proc.stderr.read().decode()
        status = proc.wait(timeout=60)
    assert status == cli.EXIT_BROKEN_PIPE
    assert err == "", err


def test_plain_text_strips_restructuredtext() -> None:
    doc = (
        "``edgectl x DB``: see :mod:`edgectl.historian.export` and\n"
        ":func:`~edgectl.a.b` or `c`, **bold**.\n\n"
        "Untouched line one.\nUntouched line two.\n\n"
        "Example::\n\n    indented ``kept``\n    block\n"
    )
    assert _args.plain_text(doc, width=200) == (
        "edgectl x DB: see edgectl.historian.export and edgectl.a.b or c, bold.\n\n"
        "Untouched line one.\nUntouched line two.\n\n"
        "Example:\n\n    indented kept\n    block"
    )
