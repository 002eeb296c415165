"""``edgectl users``: the users, roles and passwords of a controller.

``edgectl users add NAME --role ROLE --config REACTOR.toml`` prompts for the password (twice)
and writes the users file the config names (``[operator] users_file``), or the one beside the
run's database (``runs/<reactor name>.users``, or beside ``--db``), mode 0600; ``--file PATH``
names the file directly.
``edgectl users list`` and ``edgectl users remove NAME`` do what they say. Roles: viewer,
operator, engineer, admin (rights per role in the config's ``[operator] rights``).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from edgectl.commands._args import plain_text
from edgectl.errors import ConfigError

__all__ = ["add_parser", "main"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "users",
        help="add, list or remove the users and roles of a controller",
        description=plain_text(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add or replace a user (prompts for the password)")
    add.add_argument("name", help="edgectl user name (lower case)")
    add.add_argument("--role", required=True, choices=("viewer", "operator", "engineer", "admin"))
    add.add_argument("--full-name", default="", help="printed name shown with e-signatures")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input (scripts)",
    )
    listing = actions.add_parser("list", help="list the users and their roles")
    remove = actions.add_parser("remove", help="remove a user")
    remove.add_argument("name")
    for p in (add, listing, remove):
        where = p.add_mutually_exclusive_group()
        where.add_argument("--config", type=Path, help="reactor configuration (TOML)")
        where.add_argument("--file", type=Path, help="the users file itself")
        p.add_argument(
            "--db", type=Path, help="with --config: the run's database (edgectl run --db)"
        )
    parser.set_defaults(func=main)


def _store_path(args: argparse.Namespace) -> Path:
    if args.file is not None:
        return Path(args.file)
    if args.config is None:
        raise ConfigError("give --config REACTOR.toml or --file USERS_FILE")
    from edgectl.operator.config import users_path
    from edgectl.runtime.reactor_config import load_reactor_config

    cfg = load_reactor_config(args.config)
    db = args.db or Path(cfg.historian.path or Path("runs") / f"{cfg.reactor.name}.db")
    return users_path(Path(args.config).parent, cfg.operator.users_file, db)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    first = getpass.getpass(f"password for {args.name}: ")
    second = getpass.getpass(f"password for {args.name} (again): ")
    if first != second:
        raise ConfigError("the two passwords differ; nothing changed")
    return first


def main(args: argparse.Namespace) -> int:
    from edgectl.operator.users import UserStore, check_user_name

    store = UserStore(_store_path(args))
    if args.action == "add":
        check_user_name(args.name)
        user = store.add(args.name, args.role, _password(args), full_name=args.full_name)
        print(f"{store.path}: {user.name} ({user.role}) saved, mode 0600")
    elif args.action == "remove":
        store.remove(args.name)
        print(f"{store.path}: {args.name} removed")
    else:
        users = store.users()
        if not users:
            print(f"{store.path}: no users (the controller's own OS user {_me()} is admin)")
        for u in users:
            name = f" ({u.full_name})" if u.full_name else ""
            pw = "" if u.password_hash else "  [no password: cannot e-sign]"
            print(f"{u.name:<16} {u.role:<9}{name}{pw}")
    return 0


def _me() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name
