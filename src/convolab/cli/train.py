"""``convolab train``: a zoo model on a Keras dataset or on a folder of images, with curves, history and model file."""

from __future__ import annotations

import time
from pathlib import Path

from ..callbacks import EpochTimer
from ._common import (
    DATASETS,
    UsageError,
    evaluate_outputs,
    fraction,
    history_json,
    load_dataset,
    positive_int,
    predict_batches,
    saving_available,
    save_model_file,
    writable_folder,
    write_json,
)
from .epoch_backup import EpochBackup
from .image_folder import image_size, load_image_folder, predict_all

OPTIMIZERS = ("sgd", "rmsprop", "adam")
MODEL_FILE = "model.convolab"
#: what train writes into --out (an image folder adds confusion_matrix.png)
OUTPUTS = (MODEL_FILE, "history.json", "training_curves.png")
#: the seed of the validation split of an image folder when --seed is not given (Keras's examples use 1337)
FOLDER_SEED = 1337


def add_parser(sub, formatter):
    from ..zoo import ARCHITECTURES

    p = sub.add_parser(
        "train",
        formatter_class=formatter,
        help="train a zoo model on mnist, fashion_mnist, cifar10 or a folder of images",
        description=(
            "Train a zoo model and save model.convolab, history.json and training_curves.png into --out "
            "(checked to be writable before training starts). model.convolab is rewritten at the end of every "
            "epoch, so Ctrl-C keeps the last finished epoch, weights and optimizer state. "
            "With --dataset, the test set is the validation data by default, as in the lesson; --val-split "
            "holds out part of the training set instead. With --data-dir alone, a folder with one subfolder "
            "of images per class is read with keras.utils.image_dataset_from_directory, --val-split (default "
            "0.2) of it kept for validation with --seed, and confusion_matrix.png is written too."
        ),
        epilog=(
            "examples:\n"
            "  convolab train --model simple --dataset mnist --epochs 5\n"
            "  convolab train --model lenet --dataset cifar10 --epochs 10 --data-dir ~/data/cifar10\n"
            "  convolab train --data-dir photos/ --model resnet20 --image-size 64"
        ),
    )
    p.add_argument(
        "--model",
        choices=list(ARCHITECTURES),
        default=None,
        help="simple, multi or lenet (the lesson's, compiled as it compiles them), or vgg, resnet20, "
        "inception, mobilenet (compiled with adam) (default: simple for mnist/fashion_mnist, "
        "lenet for cifar10 and image folders)",
    )
    p.add_argument(
        "--dataset",
        choices=DATASETS,
        default=None,
        help="dataset to train on (leave out to train on the image folder given by --data-dir)",
    )
    p.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        metavar="N",
        help="epochs (default as the lesson: 5, or 10 for lenet)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="with --dataset: folder holding the dataset's original files, or an .npz with x_train, "
        "y_train, x_test, y_test (default: convolab's cache, downloading if needed); "
        "without: a folder of class subfolders of images",
    )
    p.add_argument("--offline", action="store_true", help="never download; fail if the files are not there")
    p.add_argument(
        "--image-size",
        type=image_size,
        default=(32, 32),
        metavar="SIZE",
        help="image folder: resize every image to SIZE or HEIGHT,WIDTH pixels (default 32)",
    )
    p.add_argument(
        "--color-mode",
        choices=("rgb", "grayscale"),
        default="rgb",
        help="image folder: read images as rgb (3 channels, default) or grayscale (1)",
    )
    p.add_argument(
        "--top-k",
        type=positive_int,
        default=None,
        metavar="K",
        help="also report top-K accuracy (default 5 for an image folder of more than 5 classes)",
    )
    p.add_argument("--batch-size", type=positive_int, default=32, metavar="N", help="batch size (default 32)")
    p.add_argument(
        "--processes",
        type=positive_int,
        default=None,
        metavar="N",
        help="train on N processes under mpiexec, each on its shard of the data with batch "
        "--batch-size (so N times the batch per step); rank 0 alone prints and writes. "
        'Needs pip install "convolab[distributed]" (--dataset only)',
    )
    p.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        default=None,
        help="optimizer (default as the lesson: rmsprop, adam for lenet and the other architectures)",
    )
    p.add_argument(
        "--learning-rate", type=float, default=None, metavar="LR", help="learning rate (default the optimizer's)"
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help=f"random seed for weights, shuffling and an image folder's split (default {FOLDER_SEED})",
    )
    p.add_argument(
        "--samples",
        type=positive_int,
        default=None,
        metavar="N",
        help="train on the first N training images only (quick runs; --dataset only)",
    )
    p.add_argument(
        "--val-split",
        type=fraction,
        default=None,
        metavar="FRAC",
        help="validate on the last FRAC of the training set instead of the test set (an image folder: default 0.2)",
    )
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="output folder (default convolab_out/MODEL_DATASET or convolab_out/MODEL_FOLDER)",
    )
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


def build_model(name, input_shape, classes, optimizer, top_k):
    """A zoo model for ``input_shape`` and ``classes``, compiled, with top-k accuracy when ``top_k``.

    The lesson's models keep their own compile (optimizer, loss); the other architectures are
    uncompiled and get Adam (or ``optimizer``) and sparse cross-entropy, from logits unless
    their last layer is a softmax.
    """
    from .. import losses, metrics, zoo

    if top_k is not None and top_k >= classes:
        raise UsageError(f"--top-k must be smaller than the number of classes ({classes}); got {top_k}")
    if name in zoo.MODELS:
        model = zoo.build(name, input_shape=input_shape, num_classes=classes, optimizer=optimizer)
        optimizer, loss = model.optimizer, model.loss
    else:
        model = zoo.get(name, input_shape=tuple(input_shape), classes=classes)
        softmax_head = getattr(model.layers[-1], "activation", None) == "softmax"
        optimizer = optimizer or "adam"
        loss = losses.SparseCategoricalCrossentropy(from_logits=not softmax_head)
    extra = [metrics.SparseTopKCategoricalAccuracy(k=top_k, name=f"top{top_k}_acc")] if top_k else []
    model.compile(optimizer=optimizer, loss=loss, metrics=["acc"] + extra)
    return model


def _fit(model, backup, epochs, *args, **kwargs):
    """``model.fit``; on Ctrl-C, an :class:`~.epoch_backup.Interrupted` saying which epoch is saved where."""
    try:
        return model.fit(*args, epochs=epochs, **kwargs)
    except KeyboardInterrupt:
        if backup is None:
            raise
        raise backup.interrupted(epochs) from None


def _backup(out):
    """The callback that saves every finished epoch into ``out``, or None without convolab.saving."""
    return EpochBackup(out / MODEL_FILE) if saving_available(out / MODEL_FILE) else None


def run(args):
    if args.dataset is None:
        if args.data_dir is None:
            raise UsageError(
                "give --dataset (mnist, fashion_mnist, cifar10) or --data-dir with a folder of "
                "class subfolders of images"
            )
        if args.processes is not None:
            raise UsageError("--processes is for --dataset; an image folder trains on one process")
        return _run_folder(args)
    return _run_dataset(args)


def _run_dataset(args):
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
    if rank0:  # before loading and training: a run whose results cannot be written is lost time
        writable_folder(out, files=OUTPUTS)

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
        say(
            f"{processes} processes: {len(x_train)} training images each, batch {args.batch_size} each "
            f"({processes * args.batch_size} per step)"
        )
    if args.seed is not None:
        set_random_seed(args.seed)
    if model_name in zoo.MODELS and args.top_k is None:  # the lesson's model, compiled as the lesson does
        model = zoo.build(model_name, input_shape=x_train.shape[1:], optimizer=optimizer)
    else:
        model = build_model(model_name, x_train.shape[1:], 10, optimizer, args.top_k)
    if rank0:
        model.summary()

    timer = EpochTimer()
    callbacks = [timer]
    if hvd is not None:
        hvd.DistributedOptimizer(model.optimizer)  # in place: the compiled optimizer now averages over ranks
        callbacks = [hvd.callbacks.BroadcastGlobalVariablesCallback(0), hvd.callbacks.MetricAverageCallback(), timer]
    backup = _backup(out) if rank0 else None  # rank 0 alone writes
    fit_args = {"validation_split": args.val_split} if args.val_split else {"validation_data": (x_val, y_val)}
    t0 = time.perf_counter()
    hist = _fit(
        model,
        backup,
        epochs,
        x_train,
        y_train,
        batch_size=args.batch_size,
        callbacks=callbacks + [backup] if backup else callbacks,
        verbose=1 if rank0 else 0,
        **fit_args,
    )
    train_seconds = time.perf_counter() - t0
    if not rank0:
        return 0  # rank 0 alone evaluates and writes
    saved = save_model_file(model, out / MODEL_FILE)  # first: the figures are worth less than the model

    result = {
        "model": model_name,
        "dataset": args.dataset,
        "params": model.count_params(),
        "epochs": epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "optimizer": type(model.optimizer).__name__,
        "train_samples": len(x_train) * processes,
        "processes": processes,
        "validation": f"last {args.val_split} of training set" if args.val_split else "test set",
        "seconds_per_epoch": timer.seconds,
        "history": history_json(hist),
    }
    if args.val_split:
        test = evaluate_outputs(model, predict_batches(model, x_test, desc="test set"), y_test)
        result["test"] = test
        print(f"test set: loss {test['loss']:.4f} - acc {test['acc']:.4f}")
    write_json(out / "history.json", result)
    plot.plot_results(hist, save=out / "training_curves.png", title=f"{model_name} on {args.dataset}")
    print(
        f"trained in {train_seconds:.1f}s; wrote {'model.convolab, ' if saved else ''}history.json, "
        f"training_curves.png to {out.resolve()}"
    )
    return 0


def _run_folder(args):
    """Train on a folder of class subfolders; write curves, confusion matrix, history and model."""
    from .. import plot
    from ..random import set_random_seed

    if args.samples:
        raise UsageError("--samples is for --dataset; an image folder trains on all its images")
    model_name = args.model or "lenet"
    folder = Path(args.data_dir)
    epochs = args.epochs or (10 if model_name == "lenet" else 5)
    out = Path(args.out or f"convolab_out/{model_name}_{folder.resolve().name}")
    optimizer = make_optimizer(args.optimizer, args.learning_rate)
    seed = FOLDER_SEED if args.seed is None else args.seed
    val_split = args.val_split or 0.2
    writable_folder(out, files=OUTPUTS + ("confusion_matrix.png",))  # before reading the folder and training

    train, val, class_names = load_image_folder(
        folder, args.image_size, val_split, seed, args.batch_size, args.color_mode
    )
    classes = len(class_names)
    top_k = args.top_k if args.top_k is not None else (5 if classes > 5 else None)
    channels = 1 if args.color_mode == "grayscale" else 3
    input_shape = tuple(args.image_size) + (channels,)
    print(
        f"{folder}: {classes} classes ({', '.join(class_names)}), {len(train.batches.file_paths)} training "
        f"and {len(val.batches.file_paths)} validation images, resized to {input_shape}"
    )
    set_random_seed(seed)
    model = build_model(model_name, input_shape, classes, optimizer, top_k)
    model.summary()

    timer = EpochTimer()
    backup = _backup(out)
    t0 = time.perf_counter()
    hist = _fit(model, backup, epochs, train, validation_data=val, callbacks=[timer, backup] if backup else [timer])
    train_seconds = time.perf_counter() - t0
    saved = save_model_file(model, out / MODEL_FILE)  # first: the figures are worth less than the model

    outputs, labels = predict_all(model, val)
    val_acc = float((outputs.argmax(axis=1) == labels).mean())
    result = {
        "model": model_name,
        "data_dir": str(folder),
        "class_names": class_names,
        "image_size": list(args.image_size),
        "color_mode": args.color_mode,
        "params": model.count_params(),
        "epochs": epochs,
        "batch_size": args.batch_size,
        "seed": seed,
        "val_split": val_split,
        "optimizer": type(model.optimizer).__name__,
        "train_samples": len(train.batches.file_paths),
        "val_samples": len(labels),
        "top_k": top_k,
        "seconds_per_epoch": timer.seconds,
        "history": history_json(hist),
        "validation": {"acc": val_acc},
    }
    if top_k:
        top = (outputs.argsort(axis=1)[:, -top_k:] == labels[:, None]).any(axis=1)
        result["validation"][f"top{top_k}_acc"] = float(top.mean())
    print("validation: " + " - ".join(f"{k} {v:.4f}" for k, v in result["validation"].items()))
    write_json(out / "history.json", result)
    title = f"{model_name} on {folder.resolve().name}"
    plot.plot_results(hist, save=out / "training_curves.png", title=title)
    plot.plot_confusion_matrix(labels, outputs, classes=class_names, save=out / "confusion_matrix.png")
    print(
        f"trained in {train_seconds:.1f}s; wrote {'model.convolab, ' if saved else ''}history.json, "
        f"training_curves.png, confusion_matrix.png to {out.resolve()}"
    )
    return 0
