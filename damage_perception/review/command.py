"""`damage-perception review`: the web review station over a station store (damage_perception/review/).

    damage-perception review --store ~/.ros/damage_perception/station.db [--host 127.0.0.1] [--port 8080]
        [--token-file FILE]

Reads are open to whoever reaches the address (loopback by default); every write (label, rollback) needs
the station token from ``--token-file`` or the environment variable DAMAGE_PERCEPTION_REVIEW_TOKEN. Without
a token the station serves read-only.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import uvicorn

from damage_perception.review.app import create_app, load_token
from damage_perception.store.database import InspectionStore, StoreError, is_server_url

TOKEN_ENV = "DAMAGE_PERCEPTION_REVIEW_TOKEN"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", required=True,
                        help="the node's store_path: a station's SQLite file or a fleet's postgresql:// URL")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    parser.add_argument("--token-file", type=Path, default=None,
                        help=f"file whose first line is the station token (default: ${TOKEN_ENV})")


def run(args: argparse.Namespace) -> int:
    if not is_server_url(args.store) and not Path(args.store).expanduser().is_file():
        print(f"review: store {args.store} does not exist", file=sys.stderr)
        return 2
    try:
        token = load_token(args.token_file, os.environ.get(TOKEN_ENV))
    except (OSError, ValueError) as error:
        print(f"review: no station token: {error}", file=sys.stderr)
        return 2
    if not token:
        print(f"review: no station token ({TOKEN_ENV} or --token-file): serving read-only", file=sys.stderr)
    try:
        store = InspectionStore(args.store if is_server_url(args.store) else Path(args.store).expanduser())
    except StoreError as error:
        print(f"review: {error}", file=sys.stderr)
        return 2
    try:
        print(f"review: http://{args.host}:{args.port}/queue over {args.store}", flush=True)
        uvicorn.run(create_app(store, token), host=args.host, port=args.port, log_level="warning")
    finally:
        store.close()
    return 0
