"""`damage-perception demo`: the simulated cell, the perception node and the planner client, together."""
from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

from damage_perception.tools.processes import config_file, node_command, ros_environment, start, stop

HELP = "run the simulated cell, the damage_perception node and the planner client; print verdicts"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the demo sub-command."""
    parser.add_argument("--items", type=int, default=20, help="number of items to inspect (default 20)")
    parser.add_argument("--damage-rate", type=float, default=0.4, help="fraction of damaged items")
    parser.add_argument("--seed", type=int, default=7, help="seed of the simulated catalogue")
    parser.add_argument("--policy", default="", help="view policy (default: the node's config)")
    parser.add_argument("--depth-encoding", choices=("16UC1", "32FC1"), default="16UC1")
    parser.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: inherited)")
    parser.add_argument("--log-dir", type=Path, default=Path("out/demo"), help="where node logs go")


def run(args: argparse.Namespace) -> int:
    """Start cell and node in the background, run the planner client in the foreground, stop all."""
    env = ros_environment(args.domain_id)
    args.log_dir.mkdir(parents=True, exist_ok=True)
    cell_params = {"num_items": args.items, "damage_rate": args.damage_rate, "seed": args.seed,
                   "depth_encoding": args.depth_encoding}
    background = [
        start(node_command("sim_cell_node", config_file("sim_cell.yaml"), cell_params), env,
              args.log_dir / "sim_cell.log"),
        start(node_command("perception_node", config_file("damage_perception.yaml"),
                           {"inspection_log": (args.log_dir / "station.db").resolve()}), env,
              args.log_dir / "damage_perception.log"),
    ]
    print(f"demo: simulated cell and damage_perception started (logs in {args.log_dir}/)", flush=True)
    started = time.monotonic()
    try:
        client_params = {"num_items": args.items, **({"policy": args.policy} if args.policy else {})}
        client = subprocess.run(node_command("planner_client", config_file("sim_cell.yaml"), client_params),
                                env=env, check=False)
    finally:
        for process in background:
            stop(process)
    print(f"demo: finished in {time.monotonic() - started:.0f} s", flush=True)
    return client.returncode
