"""Verdict commits of N stations at 5 items/s each: a SQLite file per station vs one shared PostgreSQL server.

Each station is a process running the node's own store code (``store.fleet.open_station_store``) and logging a
verdict every 0.2 s on a fixed schedule (a late commit does not shift the next one). Three set-ups:

- ``sqlite``: ``store_path: station.db`` on every station (WAL, synchronous=FULL);
- ``server``: every station committing straight to the shared server (``InspectionStore(url)``);
- ``fleet``: ``store_path: postgresql://...``: the commit the node waits for goes to the station's local
  outbox, a thread forwards it to the server; ``lag`` is the time from a verdict's commit at the station to
  its commit on the server (measured by a watcher polling the server every 20 ms, so up to 20 ms high).

Prints p50/p99 of the commit latency and the items/s held per set-up and N; no assertions. The server is a
throw-away PostgreSQL (``store.throwaway_postgres``) on a unix socket on this machine.

    .venv/bin/python benchmarks/bench_fleet.py [--stations 1,2,4,8] [--seconds 12]
"""
from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from damage_perception.store.database import InspectionRecord, InspectionStore
from damage_perception.store.fleet import open_station_store
from damage_perception.store.throwaway_postgres import ThrowawayPostgres

RATE = 5.0   # items/s per station


def station(kind: str, location: str, name: str, outbox: str, seconds: float, start_at: float, results) -> None:
    """One station: log a verdict every 1/RATE s until ``seconds`` are up; report (latencies, sent times, span)."""
    store = (InspectionStore(location, station_id=name) if kind == "server"
             else open_station_store(location, name, outbox))
    latencies, sent = [], {}
    while time.time() < start_at:
        time.sleep(0.005)
    count = int(seconds * RATE)
    for k in range(count):
        due = start_at + k / RATE
        if (wait := due - time.time()) > 0:
            time.sleep(wait)
        began = time.perf_counter()
        record = InspectionRecord(f"{name}-item-{k}", f"SKU-{k % 7}", k % 3, 0.3, 0.5, "effl0-bench", "v1",
                                  "fused 0.300 below threshold 0.500", (0.2, 0.3, 0.4), created_at=time.time())
        row = store.log_inspection(record)
        latencies.append(time.perf_counter() - began)
        sent[row] = time.time()
    span = time.time() - start_at + 1 / RATE   # the last item's slot counts whole: on schedule, held = RATE
    if kind == "fleet":
        store.flush(timeout=60)
    store.close()
    results.put((name, latencies, sent, span))


def watch_server(url: str, stop: threading.Event, arrived: dict) -> None:
    """Note when each forwarded verdict (origin id per station) first appears on the server."""
    server = InspectionStore(url)
    while not stop.is_set():
        for station_id, origin_id in server._read("SELECT station_id, origin_id FROM inspections "
                                                  "WHERE origin_id IS NOT NULL"):
            arrived.setdefault((station_id, origin_id), time.time())
        time.sleep(0.02)
    server.close()


def run_setup(kind: str, n: int, seconds: float, folder: Path, server: ThrowawayPostgres) -> dict:
    url = server.create_database() if kind != "sqlite" else ""
    if url:
        InspectionStore(url).close()   # migrate once before the stations start
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    start_at = time.time() + 3.0 + 0.3 * n   # after every process has imported and opened its store
    processes = [context.Process(target=station, args=(
        kind, url or str(folder / f"{kind}-{n}-{i}.db"), f"st-{i}", str(folder / f"outbox-{n}-{i}.db"),
        seconds, start_at, results)) for i in range(n)]
    arrived: dict = {}
    stop = threading.Event()
    watcher = threading.Thread(target=watch_server, args=(url, stop, arrived)) if kind == "fleet" else None
    for process in processes:
        process.start()
    if watcher:
        watcher.start()
    reports = [results.get(timeout=seconds + 120) for _ in processes]
    for process in processes:
        process.join()
    if watcher:
        time.sleep(0.1)
        stop.set()
        watcher.join()
    latencies = np.concatenate([r[1] for r in reports]) * 1000
    held = sum(len(r[1]) for r in reports) / max(r[3] for r in reports)
    lag = [arrived[(name, row)] - at for name, _, sent, _ in reports for row, at in sent.items()
           if (name, row) in arrived]
    return {"p50": np.percentile(latencies, 50), "p99": np.percentile(latencies, 99), "held": held,
            "lag50": np.percentile(lag, 50) * 1000 if lag else None,
            "lag99": np.percentile(lag, 99) * 1000 if lag else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", default="1,2,4,8")
    parser.add_argument("--seconds", type=float, default=12.0, help="logging time per set-up")
    args = parser.parse_args()
    counts = [int(n) for n in args.stations.split(",")]
    print(f"{RATE:.0f} items/s per station, {args.seconds:.0f} s per set-up; commit latency in ms (p50 / p99); "
          "held = items/s committed over all stations; fleet lag = station commit -> on the server")
    print(f"{'N':>3} | {'sqlite per station':>26} | {'shared server, direct':>26} | "
          f"{'fleet (outbox + forward)':>26} | {'fleet lag p50/p99':>17}")
    with tempfile.TemporaryDirectory() as folder, ThrowawayPostgres() as server:
        for n in counts:
            row = {kind: run_setup(kind, n, args.seconds, Path(folder), server)
                   for kind in ("sqlite", "server", "fleet")}
            cells = [f"{r['p50']:6.2f} / {r['p99']:6.2f}  {r['held']:5.1f}/s" for r in row.values()]
            lag = row["fleet"]
            lag_cell = f"{lag['lag50']:6.1f} / {lag['lag99']:6.1f}" if lag["lag50"] is not None else "n/a"
            print(f"{n:>3} | " + " | ".join(f"{c:>26}" for c in cells) + f" | {lag_cell:>17}", flush=True)


if __name__ == "__main__":
    main()
