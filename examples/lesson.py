"""The whole CNN lesson, in order, on real data, with convolab in place of TensorFlow.

1. Edge filters (vertical, horizontal) on MNIST digits.
2. The one-convolution CNN, 5 epochs, and its learned filters.
3. The two-convolution CNN with pooling, 5 epochs.
4. CIFAR-10 samples and LeNet, 10 epochs.

Every figure goes into --out (default docs/figures) and the numbers into results.json
(validation accuracy and seconds per epoch for each model).

    python examples/lesson.py                    # the full lesson (minutes)
    python examples/lesson.py --quick --out /tmp/lesson   # smoke run: small subsets, 1 epoch

Data: MNIST's four original IDX files in DATA_DIR/mnist, and DATA_DIR/cifar10_subset/
cifar10_subset.npz (a genuine subset of CIFAR-10: 5,085 training and 1,017 test images; accuracy on
it is lower than on the full set). DATA_DIR defaults to ../shared/data next to the repository.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
try:
    import convolab
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(REPO / "src"))
    import convolab

from convolab import keras, zoo
from convolab.callbacks import EpochTimer
from convolab.plot import (
    display_dataset,
    plot_confusion_matrix,
    plot_convolution,
    plot_feature_maps,
    plot_filters,
    plot_misclassified,
    plot_results,
)

CIFAR_CLASSES = zoo.CLASS_NAMES["cifar10"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--data-dir",
        type=Path,
        default=REPO.parent / "shared" / "data",
        help="folder with mnist/ and cifar10_subset/ (default ../shared/data)",
    )
    p.add_argument("--out", type=Path, default=REPO / "docs" / "figures", help="figure folder (default docs/figures)")
    p.add_argument(
        "--epochs-scale",
        type=float,
        default=1.0,
        help="multiply every epoch count (5, 5, 10) by this, at least 1 epoch (default 1)",
    )
    p.add_argument(
        "--quick", action="store_true", help="smoke run: 2,000 MNIST and 1,000 CIFAR training images, 1 epoch each"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = p.parse_args(argv)
    if not args.epochs_scale > 0:
        p.error(f"--epochs-scale must be > 0; got {args.epochs_scale}")
    return args


def epochs(n, args):
    return 1 if args.quick else max(1, math.ceil(n * args.epochs_scale))


def train(name, model, x_train, y_train, x_test, y_test, n_epochs, results):
    """Fit as the lesson does (test set as validation data) and record the numbers."""
    print(f"\n== {name}: {model.count_params():,} parameters, {n_epochs} epoch(s) ==")
    model.summary()
    timer = EpochTimer()
    hist = model.fit(x_train, y_train, validation_data=(x_test, y_test), epochs=n_epochs, callbacks=[timer])
    results["models"][name] = {
        "params": model.count_params(),
        "train_samples": len(x_train),
        "test_samples": len(x_test),
        "epochs": n_epochs,
        "val_acc": [round(float(v), 4) for v in hist.history["val_acc"]],
        "val_loss": [round(float(v), 4) for v in hist.history["val_loss"]],
        "acc": [round(float(v), 4) for v in hist.history["acc"]],
        "seconds_per_epoch": timer.seconds,
    }
    return hist


def main(argv=None):
    args = parse_args(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    results = {
        "convolab": convolab.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "quick": args.quick,
        "epochs_scale": args.epochs_scale,
        "seed": args.seed,
        "models": {},
    }

    def fig(name):
        print(f"  figure: {out / name}")
        return out / name

    # --- MNIST, scaled to [0, 1] as the lesson does -----------------------------------------
    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data(
        data_dir=args.data_dir / "mnist", download=False
    )
    if args.quick:
        x_train, y_train, x_test, y_test = x_train[:2000], y_train[:2000], x_test[:500], y_test[:500]
    x_train = x_train.astype(np.float32) / 255.0
    x_test = x_test.astype(np.float32) / 255.0

    # 1. Convolutional filters on MNIST digits
    plot_convolution(
        x_train[:5],
        [[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]],
        "Vertical edge filter",
        save=fig("01_vertical_edge_filter.png"),
    )
    plot_convolution(
        x_train[:5],
        [[-1.0, -1.0, -1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]],
        "Horizontal edge filter",
        save=fig("02_horizontal_edge_filter.png"),
    )

    # 2. One convolutional layer: 9 filters 5x5, Flatten, Dense(10)
    x_train_c = np.expand_dims(x_train, 3)
    x_test_c = np.expand_dims(x_test, 3)
    keras.utils.set_random_seed(args.seed)
    model = zoo.simple_cnn()
    hist = train("simple_cnn", model, x_train_c, y_train, x_test_c, y_test, epochs(5, args), results)
    plot_results(hist, save=fig("03_simple_cnn_training.png"), title="One-convolution CNN on MNIST")
    plot_filters(model, save=fig("04_simple_cnn_filters.png"))
    plot_feature_maps(model, x_test_c[0], layer=0, save=fig("05_simple_cnn_feature_maps.png"))

    # 3. Multi-layered CNN with pooling: the pyramid
    keras.utils.set_random_seed(args.seed)
    model = zoo.multi_cnn()
    hist = train("multi_cnn", model, x_train_c, y_train, x_test_c, y_test, epochs(5, args), results)
    plot_results(hist, save=fig("06_multi_cnn_training.png"), title="Two-convolution CNN on MNIST")
    plot_confusion_matrix(model, x_test_c, y=y_test, save=fig("07_multi_cnn_confusion.png"))
    plot_misclassified(model, x_test_c, y_test, save=fig("08_multi_cnn_misclassified.png"))

    # 4. CIFAR-10 and LeNet
    with np.load(args.data_dir / "cifar10_subset" / "cifar10_subset.npz", allow_pickle=False) as data:
        cx_train, cy_train, cx_test, cy_test = (data[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    if args.quick:
        cx_train, cy_train, cx_test, cy_test = cx_train[:1000], cy_train[:1000], cx_test[:300], cy_test[:300]
    display_dataset(cx_train, cy_train, classes=CIFAR_CLASSES, save=fig("09_cifar10_samples.png"))
    cx_train = cx_train.astype(np.float32) / 255.0
    cx_test = cx_test.astype(np.float32) / 255.0
    keras.utils.set_random_seed(args.seed)
    model = zoo.lenet()
    hist = train("lenet", model, cx_train, cy_train, cx_test, cy_test, epochs(10, args), results)
    plot_results(hist, save=fig("10_lenet_training.png"), title="LeNet on the CIFAR-10 subset")
    plot_filters(model, save=fig("11_lenet_filters.png"))
    plot_confusion_matrix(model, cx_test, y=cy_test, classes=CIFAR_CLASSES, save=fig("12_lenet_confusion.png"))

    results["total_seconds"] = round(time.perf_counter() - t_start, 1)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults: {out / 'results.json'}")
    for name, r in results["models"].items():
        print(
            f"  {name:10s} val_acc {r['val_acc'][-1]:.4f} after {r['epochs']} epoch(s), "
            f"{sum(r['seconds_per_epoch']) / len(r['seconds_per_epoch']):.1f} s/epoch"
        )
    print(f"total {results['total_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
