"""`damage-perception demo`: the simulated cell, the perception node and the planner client, together."""
from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import yaml

from damage_perception.cell.processes import node_command, ros_environment, start, stop
from damage_perception.core.damage_model import DamageModel
from damage_perception.core.enrolment import ENROL_VIEWS
from damage_perception.core.station import SHIPPED_MODEL_FILE, config_file
from damage_perception.data.study import gallery_episode
from damage_perception.data.study_scores import enrol_episodes
from damage_perception.sim.catalogue import make_catalogue
from damage_perception.store.database import InspectionStore
from damage_perception.store.galleries import load_gallery


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the demo sub-command."""
    parser.add_argument("--items", type=int, default=20, help="number of items to inspect (default 20)")
    parser.add_argument("--damage-rate", type=float, default=0.4, help="fraction of damaged items")
    parser.add_argument("--seed", type=int, default=7, help="seed of the simulated catalogue")
    parser.add_argument("--policy", default="", help="view policy (default: the node's config)")
    parser.add_argument("--depth-encoding", choices=("16UC1", "32FC1"), default="16UC1")
    parser.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: inherited)")
    parser.add_argument("--log-dir", type=Path, default=Path("out/demo"), help="where node logs go")
    parser.add_argument("--review", action="store_true",
                        help="also serve the review station over the demo's store, and leave it running "
                             "after the items are done (Ctrl-C stops it)")
    parser.add_argument("--review-port", type=int, default=8080, help="review station port (default 8080)")


def enrol_cell_skus(store_path: Path, items: int, damage_rate: float, seed: int) -> None:
    """Enrol a gallery for each SKU the simulated cell will present that has none yet (the operator's
    step before a new product runs: a pristine instance turned in front of the camera)."""
    kinds = tuple(yaml.safe_load(config_file("sim_cell.yaml").read_text())["sim_cell"]["ros__parameters"]["kinds"])
    skus = sorted({spec.sku for spec in make_catalogue(items, damage_rate, seed, kinds=kinds)})
    store = InspectionStore(store_path)
    model = DamageModel.load(SHIPPED_MODEL_FILE)
    # SKUs without a gallery, and those whose gallery an earlier model enrolled that this one cannot use fully
    missing = [sku for sku in skus if store.gallery(sku) is None or model.stale_gallery(load_gallery(store, sku))]
    if missing:
        print(f"demo: enrolling reference galleries of {len(missing)} SKUs in {store_path}", flush=True)
        episodes = (gallery_episode(sku, ENROL_VIEWS) for sku in missing)
        enrol_episodes(store, model, episodes, "demo enrolment", len(missing), progress=False)
    store.close()


def run(args: argparse.Namespace) -> int:
    """Start cell and node in the background, run the planner client in the foreground, stop all."""
    env = ros_environment(args.domain_id)
    args.log_dir.mkdir(parents=True, exist_ok=True)
    store_path = (args.log_dir / "station.db").resolve()
    enrol_cell_skus(store_path, args.items, args.damage_rate, args.seed)
    cell_params = {"num_items": args.items, "damage_rate": args.damage_rate, "seed": args.seed,
                   "depth_encoding": args.depth_encoding}
    background = [
        start(node_command("sim_cell_node", config_file("sim_cell.yaml"), cell_params), env,
              args.log_dir / "sim_cell.log"),
        start(node_command("perception_node", config_file("damage_perception.yaml"),
                           {"store_path": store_path, "debug.publish": True}), env,
              args.log_dir / "damage_perception.log"),
    ]
    print(f"demo: simulated cell and damage_perception started (logs in {args.log_dir}/)", flush=True)
    review = start_review(store_path, args.log_dir, args.review_port, env) if args.review else None
    started = time.monotonic()
    try:
        client_params = {"num_items": args.items, **({"policy": args.policy} if args.policy else {})}
        client = subprocess.run(node_command("planner_client", config_file("sim_cell.yaml"), client_params),
                                env=env, check=False)
    except BaseException:   # Ctrl-C or a failure during the demo: the review station goes too
        if review is not None:
            stop(review)
        raise
    finally:
        for process in background:
            stop(process)
    print(f"demo: finished in {time.monotonic() - started:.0f} s", flush=True)
    if review is not None:
        wait_for_review(review, args.review_port)
    return client.returncode


def start_review(store_path: Path, log_dir: Path, port: int, env: dict[str, str]) -> subprocess.Popen:
    """``damage-perception review`` over the demo's store on loopback, with a fresh station token in
    ``log_dir/review_token`` (readable by this user only)."""
    token_file = (log_dir / "review_token").resolve()
    token_file.write_text(secrets.token_urlsafe(24) + "\n")
    os.chmod(token_file, 0o600)
    command = [sys.executable, "-m", "damage_perception.cli", "review", "--store", str(store_path),
               "--host", "127.0.0.1", "--port", str(port), "--token-file", str(token_file)]
    process = start(command, env, log_dir / "review.log")
    print(f"demo: review station at http://127.0.0.1:{port}/queue (log in with the token in {token_file})",
          flush=True)
    return process


def wait_for_review(review: subprocess.Popen, port: int) -> None:
    """Leave the review station running until it exits or Ctrl-C."""
    print(f"demo: cell stopped; the review station stays at http://127.0.0.1:{port}/queue (Ctrl-C stops it)",
          flush=True)
    try:
        review.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop(review)
