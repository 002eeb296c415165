"""Users, roles and password hashes of a controller: one JSON file the controller owns (0600).

::

    {"version": 1, "users": {"alice": {"role": "engineer", "full_name": "Alice Martin",
                                       "password": "scrypt$16384$8$1$<salt hex>$<hash hex>"}}}

Passwords are hashed with scrypt (:func:`hashlib.scrypt`, RFC 7914; N = 2^14, r = 8, p = 1, a
16-byte random salt) and compared in constant time. The file is written atomically (temporary
file, fsync, rename) with mode 0600, and refused when another user can read it or it is not
owned by the user reading it: a password hash readable by others is a password given away.
``edgectl users add NAME --role ROLE`` manages it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from edgectl.errors import ConfigError
from edgectl.operator.config import ROLES

__all__ = ["USER_NAME", "Identity", "User", "UserStore", "check_user_name", "hash_password"]

USER_NAME: Final = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
_N, _R, _P = 2**14, 8, 1
_MIN_PASSWORD: Final = 8


@dataclass(frozen=True, slots=True)
class User:
    """One edgectl user."""

    name: str
    role: str
    full_name: str = ""
    password_hash: str = ""


@dataclass(frozen=True, slots=True)
class Identity:
    """A proven identity: who is calling, in which role, and how it was established
    (``peer uid 1000 (lab)``, ``password``, ``in-process``)."""

    name: str
    role: str
    source: str
    full_name: str = ""


def check_user_name(name: object) -> str:
    """A user name: lower-case letter or ``_``, then up to 31 of ``a-z 0-9 _ . -``."""
    if not isinstance(name, str) or not USER_NAME.match(name):
        shown = repr(name) if len(repr(name)) <= 60 else repr(name)[:57] + "..."
        raise ConfigError(
            f"user name {shown} is not valid: a lower-case letter or '_', then at most 31 "
            "lower-case letters, digits or '_ . -'"
        )
    return name


def _release_free_heap() -> None:
    """Give the C heap's free memory back to the system (glibc ``malloc_trim``; elsewhere
    nothing). scrypt's 16 MiB work area (128 r N bytes) is freed after each hash, but glibc keeps
    the freed pages of a thread's arena resident: without this, each thread that ever checked a
    password (a dashboard login runs on a worker thread) holds 16 MiB more RSS for the life of
    the controller."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    import ctypes  # only where a password is checked

    try:
        return ctypes.CDLL(None).malloc_trim  # the process's own C library
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    try:
        return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=dklen)
    finally:
        _release_free_heap()


def hash_password(password: str) -> str:
    """The stored form of ``password`` (scrypt with a fresh salt)."""
    if len(password) < _MIN_PASSWORD:
        raise ConfigError(f"a password needs at least {_MIN_PASSWORD} characters")
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _N, _R, _P, 32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(stored: str, password: str) -> bool:
    """True when ``password`` matches the stored hash (constant-time comparison)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = _scrypt(password, bytes.fromhex(salt), int(n), int(r), int(p), len(digest) // 2)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


class UserStore:
    """The users file of one controller (see the module docstring).

    The file is read when it changes (its mtime and size), so ``edgectl users add`` takes
    effect in a running controller without a restart.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._users: dict[str, User] = {}
        self._seen: tuple[int, int] | None = None

    # -- reading -------------------------------------------------------------------------------

    def _load(self) -> dict[str, User]:
        with self._lock:
            try:
                st = self.path.stat()
            except FileNotFoundError:
                self._users, self._seen = {}, None
                return self._users
            key = (st.st_mtime_ns, st.st_size)
            if key == self._seen:
                return self._users
            _check_private(self.path, st)
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(f"{self.path}: cannot read the users file: {exc}") from exc
            self._users = _decode(self.path, data)
            self._seen = key
            return self._users

    def get(self, name: str) -> User | None:
        """The user ``name``, or None."""
        return self._load().get(name)

    def users(self) -> list[User]:
        """Every user, by name."""
        return sorted(self._load().values(), key=lambda u: u.name)

    def check_password(self, name: str, password: str) -> User | None:
        """The user when ``password`` is theirs, else None."""
        user = self.get(name)
        if user is None or not user.password_hash or not isinstance(password, str):
            # hash anyway: the time taken does not tell which user names exist
            verify_password(_DUMMY_HASH, str(password))
            return None
        return user if verify_password(user.password_hash, password) else None

    # -- writing -------------------------------------------------------------------------------

    def add(self, name: str, role: str, password: str, *, full_name: str = "") -> User:
        """Add (or replace) a user; the file is created 0600 when missing."""
        check_user_name(name)
        if role not in ROLES:
            raise ConfigError(f"role {role!r} is not one of {', '.join(ROLES)}")
        user = User(name, role, full_name, hash_password(password))
        users = dict(self._load())
        users[name] = user
        self._write(users)
        return user

    def remove(self, name: str) -> None:
        """Remove a user (an error when there is none of that name)."""
        users = dict(self._load())
        if name not in users:
            raise ConfigError(f"{self.path}: no user {name!r}")
        del users[name]
        self._write(users)

    def _write(self, users: dict[str, User]) -> None:
        data = {
            "version": 1,
            "users": {
                u.name: {"role": u.role, "full_name": u.full_name, "password": u.password_hash}
                for u in sorted(users.values(), key=lambda u: u.name)
            },
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=2, sort_keys=True)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        with self._lock:
            self._seen = None


def _check_private(path: Path, st: os.stat_result) -> None:
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path}: the users file is mode {stat.S_IMODE(st.st_mode):04o}; it holds password "
            f"hashes and must be readable by its owner only (chmod 600 {path})"
        )
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise ConfigError(
            f"{path}: the users file belongs to uid {st.st_uid}, not to this controller's user "
            f"(uid {os.getuid()})"
        )


def _decode(path: Path, data: Any) -> dict[str, User]:
    if not isinstance(data, dict) or data.get("version") != 1:
        raise ConfigError(f"{path}: not an edgectl users file (version 1)")
    users = data.get("users")
    if not isinstance(users, dict):
        raise ConfigError(f"{path}: $.users must be a table of users")
    out: dict[str, User] = {}
    for name, entry in users.items():
        where = f"{path}: $.users.{name}"
        try:
            check_user_name(name)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: must be a table")
        role = entry.get("role")
        if role not in ROLES:
            raise ConfigError(f"{where}.role: {role!r} is not one of {', '.join(ROLES)}")
        full_name = entry.get("full_name", "")
        password = entry.get("password", "")
        if not isinstance(full_name, str) or not isinstance(password, str):
            raise ConfigError(f"{where}: full_name and password must be strings")
        out[name] = User(name, role, full_name, password)
    return out


_DUMMY_HASH: Final = f"scrypt${_N}${_R}${_P}${'00' * 16}${'00' * 32}"
