"""The on-disk cache of asyncua's standard address space (``[opcua] address_space_cache``).

asyncua keeps the OPC UA standard address space (some 50 MB of Python objects on a 2-core VM)
in memory unless ``Server.init(shelf_file=...)`` is given a :mod:`shelve` file: then nodes are
read from the file as they are first used. The cache holds only the standard address space
(asyncua builds it on first start and writes it with ``make_aspace_shelf``); the DI, AMB,
Machinery and LADS nodesets and edgectl's nodes are imported into memory on every start, so the
cache does not depend on them.

Two details make asyncua's option usable here:

- asyncua looks for the shelf at the exact path it was given (or ``<path>.db``), but on a Python
  without gdbm/ndbm :mod:`shelve` writes ``<path>.dat`` / ``<path>.dir`` (:mod:`dbm.dumb`), so
  asyncua would rebuild the shelf on every start. :func:`prepare` writes a marker file at the
  exact path *after* a start that built the shelf completed (:func:`seal`), and asyncua then loads
  the shelf. A start killed while writing the shelf leaves no marker, so the next start rebuilds.
- the file name carries a key (asyncua's version, the Python version and the dbm module that
  wrote it): pickled asyncua objects are only valid for the asyncua that wrote them, so a
  cache of another version is never read; stale caches in the folder are removed.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import sys
from pathlib import Path

__all__ = ["cache_key", "prepare", "seal"]

_PREFIX = "standard-aspace-"


def cache_key() -> str:
    """The key of a cache valid for this process: asyncua version, Python version, dbm module."""
    usable = []
    for name in ("dbm.gnu", "dbm.ndbm", "dbm.dumb"):  # shelve's choice: the first that imports
        try:
            importlib.import_module(name)
            usable.append(name)
        except ImportError:
            continue
    text = "|".join(
        [
            importlib.metadata.version("asyncua"),
            sys.implementation.name,
            ".".join(map(str, sys.version_info[:3])),
            ",".join(usable),
        ]
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def prepare(folder: Path) -> Path:
    """The shelf path to pass to ``Server.init`` for this process's key, in ``folder`` (created);
    files of other keys there are removed, and so are the files of an unsealed (interrupted)
    build of this key, so asyncua rebuilds it."""
    folder.mkdir(parents=True, exist_ok=True)
    name = _PREFIX + cache_key()
    shelf = folder / name
    for p in folder.glob(_PREFIX + "*"):
        stem = p.name.split(".", 1)[0]
        if stem != name or not shelf.is_file():
            p.unlink(missing_ok=True)
    return shelf


def seal(shelf: Path) -> None:
    """Mark the shelf complete once ``Server.init`` returned (asyncua then loads it next time)."""
    if not shelf.is_file() and any(shelf.parent.glob(shelf.name + ".*")):
        shelf.write_text(
            "edgectl: asyncua standard address space cache (shelve files beside this one)\n"
        )
