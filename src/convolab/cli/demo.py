"""``convolab demo``: the lesson in under a minute, offline, on the bundled MNIST sample."""

from __future__ import annotations

import argparse
import time

import numpy as np

from ..callbacks import EpochTimer
from ._common import CommandError, history_json, positive_int, scale_images, writable_folder, write_json

DEFAULT_OUT = "convolab_out/demo"


def add_parser(sub, formatter):
    p = sub.add_parser(
        "demo",
        formatter_class=formatter,
        help="train the lesson's one-conv CNN on the bundled MNIST sample and draw its figures (offline)",
        description=(
            "Run the lesson end to end without a network connection: edge filters on digits, the "
            "one-convolution CNN trained on the bundled 10,000 MNIST test digits (80% train, 20% "
            "validation), its training curves, learned filters, feature maps, confusion matrix "
            "and mistakes. Figures and history.json go to --out."
        ),
        epilog="example: convolab demo --epochs 2 --out demo_figures",
    )
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"folder for the figures (default {DEFAULT_OUT})")
    p.add_argument("--epochs", type=positive_int, default=3, metavar="N", help="training epochs (default 3)")
    p.add_argument(
        "--samples",
        type=_samples,
        default=10000,
        metavar="N",
        help="use the first N of the 10,000 bundled digits (default all), 80%% for training",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed for weights and shuffling (default 0)")
    p.add_argument("--batch-size", type=positive_int, default=32, metavar="N", help="batch size (default 32)")
    p.set_defaults(func=run)


def _samples(text):
    n = positive_int(text)
    if n < 50:
        raise argparse.ArgumentTypeError(f"at least 50 are needed (10 for validation); got {n}")
    return n


def load_sample():
    """The bundled MNIST sample, looked up at call time (so tests can substitute it)."""
    from .. import datasets

    loader = getattr(datasets, "load_sample", None)
    if loader is None:
        raise CommandError(
            "convolab.datasets.load_sample is not available in this install; the demo needs the bundled MNIST sample"
        )
    return loader()


def run(args):
    from .. import plot, zoo
    from ..filters import KERNELS
    from ..random import set_random_seed

    t0 = time.perf_counter()
    out = writable_folder(args.out, files=("history.json",))
    x, y = load_sample()
    x, y = np.asarray(x)[: args.samples], np.asarray(y).reshape(-1)[: args.samples]
    if len(x) < 50:
        raise CommandError(f"the bundled sample holds only {len(x)} images; the demo needs at least 50")
    n_train = int(len(x) * 0.8)
    xs = scale_images(x)
    x_train, y_train, x_val, y_val = xs[:n_train], y[:n_train], xs[n_train:], y[n_train:]
    print(f"MNIST sample: {n_train} digits for training, {len(x_val)} for validation")

    figures = []

    def saved(name):
        figures.append(name)
        return out / name

    plot.plot_convolution(
        xs[:5, :, :, 0], KERNELS["vertical_edge"], "Vertical edge filter", save=saved("01_vertical_edge_filter.png")
    )
    plot.plot_convolution(
        xs[:5, :, :, 0],
        KERNELS["horizontal_edge"],
        "Horizontal edge filter",
        save=saved("02_horizontal_edge_filter.png"),
    )

    set_random_seed(args.seed)
    model = zoo.simple_cnn()
    model.summary()
    timer = EpochTimer()
    hist = model.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        epochs=args.epochs,
        batch_size=args.batch_size,
        callbacks=[timer],
    )
    val_acc = hist.history["val_acc"][-1]
    print(f"validation accuracy after {args.epochs} epoch(s): {val_acc:.4f} ({len(x_val)} digits)")

    plot.plot_results(hist, save=saved("03_training_curves.png"), title="One-convolution CNN on MNIST")
    plot.plot_filters(model, save=saved("04_learned_filters.png"))
    plot.plot_feature_maps(model, x_val[0], layer=0, save=saved("05_feature_maps.png"))
    plot.plot_confusion_matrix(model, x_val, y=y_val, save=saved("06_confusion_matrix.png"))
    plot.plot_misclassified(model, x_val, y_val, n=10, save=saved("07_misclassified.png"))
    write_json(
        out / "history.json",
        {
            "model": "simple_cnn",
            "params": model.count_params(),
            "train_samples": n_train,
            "val_samples": len(x_val),
            "epochs": args.epochs,
            "seed": args.seed,
            "seconds_per_epoch": timer.seconds,
            "history": history_json(hist),
        },
    )
    print(f"wrote {len(figures)} figures and history.json in {time.perf_counter() - t0:.1f}s to:")
    print(f"  {out.resolve()}")
    for name in figures:
        print(f"    {name}")
    return 0
