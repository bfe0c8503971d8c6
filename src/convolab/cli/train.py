"""``convolab train``: one of the lesson's models on a Keras dataset, with curves, history and model file."""
from __future__ import annotations

import time
from pathlib import Path

from ..callbacks import EpochTimer
from ._common import (DATASETS, UsageError, evaluate_outputs, fraction, history_json,
                      load_dataset, positive_int, predict_batches, save_model_file, write_json)

OPTIMIZERS = ("sgd", "rmsprop", "adam")


def add_parser(sub, formatter):
    from ..zoo import MODELS

    p = sub.add_parser(
        "train", formatter_class=formatter,
        help="train simple/multi/lenet on mnist, fashion_mnist or cifar10",
        description=(
            "Train one of the lesson's models and save training_curves.png, history.json and "
            "model.convolab into --out. By default the test set is the validation data, as in the "
            "lesson; --val-split holds out part of the training set instead."),
        epilog=("examples:\n"
                "  convolab train --model simple --dataset mnist --epochs 5\n"
                "  convolab train --model lenet --dataset cifar10 --epochs 10 --data-dir ~/data/cifar10"))
    p.add_argument("--model", choices=list(MODELS), default=None,
                   help="simple (one conv), multi (two conv + pooling) or lenet "
                        "(default: simple for mnist/fashion_mnist, lenet for cifar10)")
    p.add_argument("--dataset", choices=DATASETS, required=True, help="dataset to train on")
    p.add_argument("--epochs", type=positive_int, default=None, metavar="N",
                   help="epochs (default as the lesson: 5, or 10 for lenet)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="folder holding the dataset's original files, or an .npz with x_train, y_train, "
                        "x_test, y_test (default: convolab's cache, downloading if needed)")
    p.add_argument("--offline", action="store_true", help="never download; fail if the files are not there")
    p.add_argument("--batch-size", type=positive_int, default=32, metavar="N", help="batch size (default 32)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None,
                   help="optimizer (default as the lesson: rmsprop, adam for lenet)")
    p.add_argument("--learning-rate", type=float, default=None, metavar="LR", help="learning rate (default the optimizer's)")
    p.add_argument("--seed", type=int, default=None, help="random seed for weights and shuffling")
    p.add_argument("--samples", type=positive_int, default=None, metavar="N",
                   help="train on the first N training images only (quick runs)")
    p.add_argument("--val-split", type=fraction, default=None, metavar="FRAC",
                   help="validate on the last FRAC of the training set instead of the test set")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (default convolab_out/MODEL_DATASET)")
    p.add_argument("--processes", type=positive_int, default=None, metavar="N",
                   help="train on N processes under mpiexec, each on its shard of the data with batch "
                        "--batch-size (so N times the batch per step); rank 0 alone prints and writes. "
                        'Needs pip install "convolab[distributed]"')
    p.set_defaults(func=run)


def make_optimizer(name, learning_rate):
    from .. import optimizers

    if learning_rate is not None and not learning_rate > 0:
        raise UsageError(f"--learning-rate must be > 0; got {learning_rate}")
    if name is None:
        if learning_rate is not None:
            raise UsageError("--learning-rate needs --optimizer (which optimizer should use it?)")
        return None
    cls = {"sgd": optimizers.SGD, "rmsprop": optimizers.RMSprop, "adam": optimizers.Adam}[name]
    return cls() if learning_rate is None else cls(learning_rate=learning_rate)


def _ranks(args):
    """``convolab.distributed`` once MPI has started, checked against --processes; None on one process."""
    from ._launch import under_mpi

    if not under_mpi():
        return None
    from .. import distributed as hvd

    hvd.init()
    if args.processes is not None and args.processes != hvd.size():
        raise UsageError(f"--processes {args.processes} expects {args.processes} ranks; mpiexec started {hvd.size()}")
    return hvd


def run(args):
    from .. import plot, zoo
    from ..random import set_random_seed

    hvd = _ranks(args)
    if hvd is None and (args.processes or 1) > 1:
        from ._launch import relaunch

        return relaunch(args.argv, args.processes)
    rank0 = hvd is None or hvd.rank() == 0
    say = print if rank0 else (lambda *a, **k: None)
    model_name = args.model or zoo.DEFAULT_MODEL[args.dataset]
    epochs = args.epochs or (10 if model_name == "lenet" else 5)
    out = Path(args.out or f"convolab_out/{model_name}_{args.dataset}")
    optimizer = make_optimizer(args.optimizer, args.learning_rate)

    say(f"loading {args.dataset}...", flush=True)
    (x_train, y_train), (x_test, y_test) = load_dataset(args.dataset, args.data_dir, args.offline)
    if args.samples:
        x_train, y_train = x_train[: args.samples], y_train[: args.samples]
    say(f"{args.dataset}: {len(x_train)} training and {len(x_test)} test images of shape {x_train.shape[1:]}")
    processes, x_val, y_val = 1, x_test, y_test
    if hvd is not None:  # each rank its shard of the training and validation data
        processes = hvd.size()
        x_train, y_train = hvd.shard(x_train, y_train, seed=0 if args.seed is None else args.seed)
        x_val, y_val = hvd.shard(x_test, y_test, seed=None)
        say(f"{processes} processes: {len(x_train)} training images each, batch {args.batch_size} each "
            f"({processes * args.batch_size} per step)")
    if args.seed is not None:
        set_random_seed(args.seed)
    model = zoo.build(model_name, input_shape=x_train.shape[1:], optimizer=optimizer)
    if rank0:
        model.summary()
        out.mkdir(parents=True, exist_ok=True)

    timer = EpochTimer()
    callbacks = [timer]
    if hvd is not None:
        hvd.DistributedOptimizer(model.optimizer)  # in place: the compiled optimizer now averages over ranks
        callbacks = [hvd.callbacks.BroadcastGlobalVariablesCallback(0), hvd.callbacks.MetricAverageCallback(), timer]
    fit_args = {"validation_split": args.val_split} if args.val_split else {"validation_data": (x_val, y_val)}
    t0 = time.perf_counter()
    hist = model.fit(x_train, y_train, epochs=epochs, batch_size=args.batch_size, callbacks=callbacks,
                     verbose=1 if rank0 else 0, **fit_args)
    train_seconds = time.perf_counter() - t0
    if not rank0:
        return 0  # rank 0 alone evaluates and writes

    result = {"model": model_name, "dataset": args.dataset, "params": model.count_params(),
              "epochs": epochs, "batch_size": args.batch_size, "seed": args.seed,
              "optimizer": type(model.optimizer).__name__, "train_samples": len(x_train) * processes,
              "processes": processes,
              "validation": f"last {args.val_split} of training set" if args.val_split else "test set",
              "seconds_per_epoch": timer.seconds, "history": history_json(hist)}
    if args.val_split:
        test = evaluate_outputs(model, predict_batches(model, x_test, desc="test set"), y_test)
        result["test"] = test
        print(f"test set: loss {test['loss']:.4f} - acc {test['acc']:.4f}")
    plot.plot_results(hist, save=out / "training_curves.png", title=f"{model_name} on {args.dataset}")
    write_json(out / "history.json", result)
    saved = save_model_file(model, out / "model.convolab")
    print(f"trained in {train_seconds:.1f}s; wrote training_curves.png, history.json"
          f"{', model.convolab' if saved else ''} to {out.resolve()}")
    return 0
