"""``convolab predict`` and ``convolab evaluate``: use a saved model."""

from __future__ import annotations


import numpy as np

from ._common import (
    DATASETS,
    CommandError,
    UsageError,
    evaluate_outputs,
    load_dataset,
    load_model_file,
    note,
    positive_int,
    predict_batches,
    read_image,
    writable_folder,
    write_json,
)


def add_parsers(sub, formatter):
    p = sub.add_parser(
        "predict",
        formatter_class=formatter,
        help="classify image files with a saved model",
        description=(
            "Print the predicted class and its probability for each image. Images are "
            "converted to the model's channels (grey or RGB) and resized to its input size; "
            "a note says when that happens. MNIST models expect a light digit on a dark "
            "background: use --invert for dark ink on white paper."
        ),
        epilog="example: convolab predict convolab_out/simple_mnist/model.convolab digit.png --invert",
    )
    p.add_argument("model", metavar="MODEL", help="model file written by model.save() or convolab train")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG/JPEG/... files")
    p.add_argument(
        "--classes",
        default=None,
        metavar="DATASET|NAMES",
        help="class names: mnist, fashion_mnist, cifar10, or a comma-separated list",
    )
    p.add_argument("--invert", action="store_true", help="invert grey levels (dark ink on light paper)")
    p.add_argument(
        "--top", type=positive_int, default=1, metavar="K", help="show the K most likely classes (default 1)"
    )
    p.set_defaults(func=run_predict)

    e = sub.add_parser(
        "evaluate",
        formatter_class=formatter,
        help="loss and accuracy of a saved model on a dataset's test set",
        description="Evaluate a saved model on the test set of a Keras dataset (scaled to [0, 1]).",
        epilog="example: convolab evaluate convolab_out/simple_mnist/model.convolab --dataset mnist",
    )
    e.add_argument("model", metavar="MODEL", help="model file written by model.save() or convolab train")
    e.add_argument("--dataset", choices=DATASETS, required=True, help="dataset whose test set to use")
    e.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="folder holding the dataset files, or an .npz with x_train, y_train, x_test, y_test",
    )
    e.add_argument("--offline", action="store_true", help="never download")
    e.add_argument("--samples", type=positive_int, default=None, metavar="N", help="only the first N test images")
    e.add_argument("--batch-size", type=positive_int, default=256, metavar="N", help="batch size (default 256)")
    e.add_argument(
        "--out", default=None, metavar="DIR", help="also write confusion_matrix.png and evaluation.json into DIR"
    )
    e.set_defaults(func=run_evaluate)


def class_names(spec, k):
    from ..zoo import CLASS_NAMES

    if spec is None:
        return None
    names = CLASS_NAMES.get(spec) or [s.strip() for s in spec.split(",")]
    if len(names) != k:
        raise UsageError(f"--classes gives {len(names)} names but the model has {k} outputs")
    return names


def _input_spec(model):
    shape = getattr(model, "input_shape", None)
    if shape is None or len(shape) != 4 or shape[-1] not in (1, 3) or None in shape[1:]:
        raise CommandError(
            f"predict works with image models taking (height, width, 1 or 3) inputs; this model takes {shape}"
        )
    return shape[1], shape[2], shape[3]


def prepare_image(path, h, w, c, invert=False):
    """One file -> float32 ``(h, w, c)`` in [0, 1], with notes about conversions."""
    from PIL import Image

    arr, mode = read_image(path, c)
    changes = []
    if mode != ("L" if c == 1 else "RGB"):
        changes.append(f"converted from {mode} to {'greyscale' if c == 1 else 'RGB'}")
    if arr.shape[:2] != (h, w):
        changes.append(f"resized from {arr.shape[1]}x{arr.shape[0]} to {w}x{h}")
        arr = np.asarray(Image.fromarray(arr).resize((w, h), Image.Resampling.BILINEAR))
    if changes:
        note(f"{path}: {' and '.join(changes)} for the model's input ({h}, {w}, {c})")
    x = arr.astype(np.float32) / 255.0
    if invert:
        x = 1.0 - x
    elif c == 1 and x.mean() > 0.5:
        note(f"{path}: mostly light; the model may expect a light subject on a dark background (try --invert)")
    return x.reshape(h, w, c)


def run_predict(args):
    from ..plot._base import probabilities

    model = load_model_file(args.model)
    h, w, c = _input_spec(model)
    xs = np.stack([prepare_image(path, h, w, c, args.invert) for path in args.images])
    prob = probabilities(predict_batches(model, xs, desc="predicting"))
    names = class_names(args.classes, prob.shape[1])
    for path, p in zip(args.images, prob):
        order = np.argsort(p)[::-1][: args.top]
        label = ", ".join(f"{names[i] if names else i} ({p[i]:.1%})" for i in order)
        print(f"{path}: {label}")
    return 0


def run_evaluate(args):
    from .. import plot
    from ..zoo import CLASS_NAMES

    out = writable_folder(args.out, files=("confusion_matrix.png", "evaluation.json")) if args.out else None
    model = load_model_file(args.model)
    _, (x_test, y_test) = load_dataset(args.dataset, args.data_dir, args.offline)
    if args.samples:
        x_test, y_test = x_test[: args.samples], y_test[: args.samples]
    want = getattr(model, "input_shape", None)
    if want is not None and tuple(want[1:]) != x_test.shape[1:]:
        raise CommandError(
            f"the model takes inputs of shape {tuple(want[1:])} but {args.dataset} images are "
            f"{x_test.shape[1:]}; evaluate it on the dataset it was trained for"
        )
    outputs = predict_batches(model, x_test, args.batch_size, desc="evaluating")
    logs = evaluate_outputs(model, outputs, y_test)
    print(f"{args.dataset} test set ({len(x_test)} images): " + " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
    if out is not None:
        plot.plot_confusion_matrix(
            y_test, outputs, classes=CLASS_NAMES[args.dataset], save=out / "confusion_matrix.png"
        )
        write_json(
            out / "evaluation.json", {"model": str(args.model), "dataset": args.dataset, "samples": len(x_test), **logs}
        )
        print(f"wrote confusion_matrix.png and evaluation.json to {out.resolve()}")
    return 0
