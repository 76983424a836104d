"""Data-parallel training through PyTorch's own launcher: ``train --nproc N`` re-runs the same command under
``torchrun`` (``torch.distributed.run``), N processes on this machine, each one rank of a DDP run (gloo on
CPUs, NCCL when a GPU is present; see ``core.training.Shard``).

Across machines: run the same command on every machine with ``--nnodes M --rdzv-endpoint HOST:PORT`` (the
same HOST:PORT everywhere: a machine all of them reach; torchrun's c10d rendezvous assigns the ranks) and the
same ``--rdzv-id``; training starts once all M machines have joined.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from damage_perception.core.training import Shard


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("distributed training (torchrun)")
    group.add_argument("--nproc", type=int, default=1, help="training processes on this machine (DDP ranks)")
    group.add_argument("--nnodes", type=int, default=1, help="machines taking part (run the command on each)")
    group.add_argument("--rdzv-endpoint", default="", metavar="HOST:PORT",
                       help="rendezvous address every machine reaches (needed with --nnodes > 1)")
    group.add_argument("--rdzv-id", default="damage-perception-train", help="the run's name at the rendezvous")


LAUNCHER_OPTIONS = ("nproc", "nnodes", "rdzv_endpoint", "rdzv_id")


def in_worker() -> bool:
    """Whether this process is a rank started by torchrun (of a run of more than one)."""
    return "LOCAL_RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def wanted(args: argparse.Namespace) -> bool:
    """Whether the command asks for more than one process and is not one of them yet."""
    return (args.nproc > 1 or args.nnodes > 1) and not in_worker()


def launch(args: argparse.Namespace, command: list[str]) -> int:
    """Run ``damage-perception <command>`` under torchrun as asked by ``args``; returns torchrun's status."""
    if args.nproc < 1 or args.nnodes < 1:
        print("train: --nproc and --nnodes must be at least 1", file=sys.stderr)
        return 2
    if args.nnodes > 1 and not args.rdzv_endpoint:
        print("train: --nnodes > 1 needs --rdzv-endpoint HOST:PORT (the same on every machine)", file=sys.stderr)
        return 2
    where = (["--standalone"] if args.nnodes == 1 else
             [f"--nnodes={args.nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={args.rdzv_endpoint}",
              f"--rdzv-id={args.rdzv_id}"])
    argv = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={args.nproc}", *where,
            "-m", "damage_perception.cli", *command]
    print(f"train: {args.nproc} process(es) x {args.nnodes} machine(s) through torchrun", flush=True)
    return subprocess.run(argv, check=False).returncode


def command_line(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """The arguments that give ``args`` back through ``parser``, less the launcher's own options."""
    argv: list[str] = []
    for action in parser._actions:  # argparse has no public list of them
        if action.dest in (*LAUNCHER_OPTIONS, "help"):
            continue
        value = getattr(args, action.dest, None)
        if not action.option_strings:
            argv.append(str(value))
        elif isinstance(action, argparse._StoreTrueAction):
            argv += [action.option_strings[0]] if value else []
        elif value is not None and value != action.default:
            argv += [action.option_strings[0], str(value)]
    return argv


@contextmanager
def process_group() -> Iterator[Shard]:
    """This process's ``Shard``: a DDP rank inside torchrun (the process group up for the block), else the
    whole of a one-process run."""
    import torch  # here, like train's other heavy imports: the CLI imports every command to build its parser
    import torch.distributed as dist

    from damage_perception.core.training import Shard

    if not in_worker():
        yield Shard()
        return
    gpu = torch.cuda.is_available()
    local = int(os.environ["LOCAL_RANK"])
    if gpu:
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if gpu else "gloo")
    try:
        yield Shard(dist.get_rank(), dist.get_world_size(), f"cuda:{local}" if gpu else "cpu")
        dist.barrier()
    finally:
        dist.destroy_process_group()
