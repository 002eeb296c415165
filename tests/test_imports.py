"""Every module of the package imports on its own, in a fresh interpreter.

The test suite imports modules in one order; a user, a HIL conftest or a service imports them
in another. A circular import shows only in some orders (the HIL conftest importing
``edgectl.emulators.rig`` first failed while every test passed), so each module is imported
first in its own process.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import edgectl


def _modules() -> list[str]:
    return sorted(
        m.name
        for m in pkgutil.walk_packages(edgectl.__path__, prefix="edgectl.")
        if not m.name.startswith("edgectl._core")
    )


def _import_alone(name: str) -> tuple[str, str]:
    proc = subprocess.run(
        [sys.executable, "-c", f"import {name}"], capture_output=True, text=True, check=False
    )
    return name, proc.stderr.strip().splitlines()[-1] if proc.returncode else ""


def test_every_module_imports_first_in_a_fresh_interpreter() -> None:
    names = _modules()
    assert "edgectl.emulators.rig" in names
    assert len(names) > 50
    with ThreadPoolExecutor(max_workers=4) as pool:
        failures = {n: err for n, err in pool.map(_import_alone, names) if err}
    assert not failures, failures
