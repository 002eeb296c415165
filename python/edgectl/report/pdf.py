"""The run report as PDF: the HTML report printed by a headless Chromium (its print-to-PDF, A4,
laid out by the report's print CSS), so the PDF is exactly what a reviewer printing the HTML
from a browser gets. No PDF library: the browser is the renderer.

The browser is ``$EDGECTL_CHROMIUM`` when set, else the first of ``chromium``,
``chromium-browser``, ``google-chrome`` on ``PATH``, else Debian's ``/usr/lib/chromium/chromium``
(where ``scripts/ensure-chromium`` looks too).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from edgectl.errors import ConfigError

__all__ = ["find_chromium", "html_to_pdf"]

_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_DEBIAN = Path("/usr/lib/chromium/chromium")


def find_chromium() -> Path:
    """The Chromium to print with; :class:`ConfigError` naming what was looked for if none."""
    env = os.environ.get("EDGECTL_CHROMIUM", "")
    if env:
        p = Path(env)
        if not (p.is_file() and os.access(p, os.X_OK)):
            raise ConfigError(f"EDGECTL_CHROMIUM={env}: not an executable file")
        return p
    for name in _NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    if _DEBIAN.is_file() and os.access(_DEBIAN, os.X_OK):
        return _DEBIAN
    raise ConfigError(
        "a PDF report is printed by a headless Chromium, and none was found (looked for "
        f"{', '.join(_NAMES)} on PATH and {_DEBIAN}): install it (Debian: apt-get install "
        "chromium) or set EDGECTL_CHROMIUM, or write the report as .html and print it from a "
        "browser"
    )


def html_to_pdf(
    html_text: str,
    out: str | Path,
    *,
    chromium: str | Path | None = None,
    timeout_s: float = 180.0,
) -> Path:
    """Print ``html_text`` (a self-contained page) to the PDF ``out`` with a headless Chromium
    (``chromium`` or :func:`find_chromium`); :class:`ConfigError` if the browser fails."""
    browser = Path(chromium) if chromium is not None else find_chromium()
    path = Path(out)
    with tempfile.TemporaryDirectory(prefix="edgectl-report-") as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(html_text, encoding="utf-8")
        pdf = Path(tmp) / "report.pdf"
        cmd = [
            str(browser),
            "--headless",
            "--no-sandbox",  # CI and bench PCs run this as root, where the sandbox refuses
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-extensions",
            "--disable-background-networking",
            "--no-first-run",
            "--no-pdf-header-footer",  # no date/URL/page banner: the report has its own title
            f"--user-data-dir={Path(tmp) / 'profile'}",  # never the user's browser profile
            f"--print-to-pdf={pdf}",
            page.as_uri(),
        ]
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            raise ConfigError(
                f"{browser}: printing the report to PDF took over {timeout_s:g} s"
            ) from None
        except OSError as exc:
            raise ConfigError(f"{browser}: cannot run it to print the PDF: {exc}") from None
        if done.returncode != 0 or not pdf.is_file() or pdf.stat().st_size == 0:
            tail = " ".join((done.stderr or "").strip().splitlines()[-3:])
            raise ConfigError(
                f"{browser}: printing the report to PDF failed (exit {done.returncode}): "
                f"{tail or 'no output'}"
            )
        shutil.move(str(pdf), path)
    return path
