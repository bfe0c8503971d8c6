"""Seconds per epoch of the lesson's two-conv model on 1 and 2 MPI processes, and the bytes each step exchanges.

    python benchmarks/distributed.py                     # 8,192 random MNIST-shaped images, batch 32 per rank
    python benchmarks/distributed.py --samples 2048 --processes 1,2,4

Each row is one ``mpiexec -n N`` job (the venv's, from ``pip install "convolab[distributed]"``)
training ``multi`` (8,490 parameters) with ``DistributedOptimizer(Adam)`` and the broadcast and
metric-average callbacks on random images, so the figures say nothing about accuracy. Each rank
gets ``cores // N`` threads (as ``convolab train --processes N`` gives them); one process keeps
all of them. One warm-up epoch, then the median of ``--epochs`` timed ones. An epoch here is
``--samples`` images, not MNIST's 60,000: scale by ``60000 / samples`` for a full one.

Bytes: the gradients travel as ONE float32 buffer of 4 x (trainable parameters) bytes per step
(the buffer's ``nbytes``, read from the optimizer). A bandwidth-optimal allreduce (reduce-scatter
then allgather, or a ring) sends 2 (N - 1) / N times the buffer from each rank and receives as
much: 1x for N = 2, approaching 2x for many ranks. That factor is the textbook one; which algorithm
MPI picks for a given size is its own choice. Run on a quiet machine: anything else loading the
cores makes the seconds meaningless.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time

import numpy as np


def worker(samples, batch, epochs):
    """One rank: train, and on rank 0 print one JSON line."""
    import convolab.distributed as hvd
    from convolab import keras, zoo
    from convolab.callbacks import EpochTimer

    hvd.init()
    rng = np.random.default_rng(0)
    x = rng.random((samples, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, samples)
    xs, ys = hvd.shard(x, y, seed=0)
    keras.utils.set_random_seed(0)
    opt = hvd.DistributedOptimizer(keras.optimizers.Adam(1e-3))
    model = zoo.build("multi", input_shape=(28, 28, 1), optimizer=opt)
    timer = EpochTimer()
    t0 = time.perf_counter()
    model.fit(
        xs,
        ys,
        batch_size=batch,
        epochs=epochs + 1,
        verbose=0,
        callbacks=[hvd.callbacks.BroadcastGlobalVariablesCallback(0), hvd.callbacks.MetricAverageCallback(), timer],
    )
    wall = time.perf_counter() - t0
    if hvd.rank() == 0:
        params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        print(
            json.dumps(
                {
                    "processes": hvd.size(),
                    "samples": len(xs) * hvd.size(),
                    "batch": batch,
                    "epoch_s": float(np.median(timer.seconds[1:])),
                    "wall_s": wall,
                    "params": params,
                    "buffer_bytes": int(opt.gradient_reducer._buffer.nbytes),
                    "steps": math.ceil(len(xs) / batch),
                }
            ),
            flush=True,
        )


def run_one(n, samples, batch, epochs):
    sys.path.insert(0, "src")
    from convolab.cli._launch import find_mpiexec, rank_env

    mpiexec = find_mpiexec()
    if mpiexec is None:
        raise SystemExit(
            'benchmarks/distributed.py needs mpiexec; install it with: pip install "convolab[distributed]"'
        )
    env = rank_env(n)
    if n == 1:  # one process keeps every core, as on one machine without MPI
        for var in ("CONVOLAB_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env.pop(var, None)
    proc = subprocess.run(
        [
            mpiexec,
            "-n",
            str(n),
            sys.executable,
            __file__,
            "--worker",
            "--samples",
            str(samples),
            "--batch",
            str(batch),
            "--epochs",
            str(epochs),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{n} processes failed (exit {proc.returncode}); expected exit 0:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(rows):
    base = rows[0]["epoch_s"]
    lines = [
        f"Two-conv CNN (`multi`, {rows[0]['params']:,} trainable parameters), {rows[0]['samples']:,} random "
        f"28x28x1 images per epoch, batch {rows[0]['batch']} per rank",
        "",
        "| processes | s/epoch | speed-up | steps/epoch per rank | allreduce buffer | sent per rank per step "
        "(2(N-1)/N x buffer) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        n, buf = r["processes"], r["buffer_bytes"]
        lines.append(
            f"| {n} | {r['epoch_s']:.3f} | {base / r['epoch_s']:.2f}x | {r['steps']} | {buf:,} B "
            f"| {round(2 * (n - 1) / n * buf):,} B |"
        )
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=8192, help="images per epoch, all ranks together (default 8192)")
    ap.add_argument("--batch", type=int, default=32, help="batch per rank (default 32)")
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs after one warm-up (default 2)")
    ap.add_argument("--processes", default="1,2", help="comma-separated process counts (default 1,2)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.samples, args.batch, args.epochs)
    rows = [run_one(int(n), args.samples, args.batch, args.epochs) for n in args.processes.split(",")]
    print(table(rows))


if __name__ == "__main__":
    main()
