"""`frontier keys create|revoke|list`: the admin side of API keys, against the configured database."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `keys` subcommand and its actions."""
    parser = subparsers.add_parser("keys", help="create, revoke or list API keys (one tenant per team)")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a key for a tenant (created on first use); prints it once")
    create.add_argument("--tenant", required=True, help="the team the key acts for")
    create.add_argument("--name", default="", help="a label for the key (who or what uses it)")
    revoke = actions.add_parser("revoke", help="revoke a key by its prefix (the part after 'fck_')")
    revoke.add_argument("prefix")
    actions.add_parser("list", help="every key: prefix, tenant, label, created, revoked")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Carry out one key action in one transaction."""
    from service import auth
    from service.db import session_scope

    with session_scope() as session:
        if args.action == "create":
            try:
                key = auth.create_key(session, args.tenant, args.name)
            except ValueError as exc:
                print(f"frontier keys: {exc}", file=sys.stderr)
                return 2
            print(key)
            print("(shown once: only its hash is stored)", file=sys.stderr)
            return 0
        if args.action == "revoke":
            if not auth.revoke_key(session, args.prefix):
                print(f"frontier keys: no live key with prefix {args.prefix!r}", file=sys.stderr)
                return 1
            print(f"revoked {args.prefix}")
            return 0
        for info in auth.list_keys(session):
            state = f"revoked {info.revoked_at:%Y-%m-%d %H:%M}" if info.revoked_at else "live"
            created = f"{info.created_at:%Y-%m-%d %H:%M}"
            print(f"{info.prefix}  {info.tenant:<20} {info.name:<20} created {created}  {state}")
        return 0
