"""`damage-perception record`: record the cell's topics (camera, TF, verdicts) to an MCAP rosbag2.

Runs until Ctrl-C / SIGINT / SIGTERM or ``--duration`` seconds, then closes the bag cleanly and prints the
message count of each topic. ``damage-perception replay BAG`` runs the pipeline over the recording again.
"""
from __future__ import annotations

import argparse
import signal
import threading
import time
from pathlib import Path

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from damage_perception.ros.bag_recorder import BagRecorder

DEFAULT_TOPICS = ("color/image_raw", "depth/image_raw", "color/camera_info", "/tf", "/tf_static", "verdict")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the record sub-command."""
    parser.add_argument("--out", type=Path, required=True, help="rosbag2 folder to write (must not exist)")
    parser.add_argument("--topics", nargs="+", default=list(DEFAULT_TOPICS),
                        help=f"topics to record (default: {' '.join(DEFAULT_TOPICS)})")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")


def run(args: argparse.Namespace) -> int:
    """Record until SIGINT / SIGTERM or ``--duration`` is over."""
    if args.out.exists():
        print(f"record: {args.out} exists; give a new folder")
        return 1
    stop = threading.Event()  # set by a signal; the bag is closed between two messages, never inside one
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    recorder = BagRecorder(args.out, args.topics)
    executor = SingleThreadedExecutor()
    executor.add_node(recorder)
    print(f"record: writing {args.out}; waiting for {', '.join(recorder.waiting_for) or 'nothing'}", flush=True)
    try:
        _spin(executor, recorder, stop, args.duration)
    finally:
        recorder.close()
        recorder.destroy_node()
        rclpy.try_shutdown()
    _print_counts(args.out, recorder.counts, recorder.waiting_for)
    return 0


def _spin(executor, recorder, stop: threading.Event, duration: float | None) -> None:
    """Spin until ``stop`` or ``duration``; say once when every topic is subscribed and matched."""
    end = time.monotonic() + duration if duration is not None else float("inf")
    announced = False
    while not stop.is_set() and time.monotonic() < end:
        executor.spin_once(timeout_sec=0.1)
        if not announced and not recorder.waiting_for and not recorder.unmatched:
            print(f"record: recording {', '.join(sorted(recorder.counts))}", flush=True)
            announced = True


def _print_counts(out: Path, counts: dict[str, int], missing: list[str]) -> None:
    print(f"record: closed {out}")
    for topic, count in sorted(counts.items()):
        print(f"  {topic}: {count} messages")
    for topic in missing:
        print(f"  {topic}: never appeared (not recorded)")
