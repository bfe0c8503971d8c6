"""convolab.zoo's four functional architectures rebuilt in PyTorch: parameter counts side by side.

    pip install torch==2.13.0        # the CPU build; PyTorch is not a convolab dependency
    python benchmarks/zoo_params.py

Each model is written again in PyTorch from its description (``nn.Conv2d`` with ``padding=1``
for 3x3 'same', ``groups=C`` for a depthwise conv, ``bias=False`` where convolab's has no bias),
independently of convolab's code, and both are built for 32x32x3 images and 10 classes.

What is compared. PyTorch counts only gamma and beta of a BatchNorm as parameters; its running
mean and variance are buffers (as is ``num_batches_tracked``, left out here). Keras, and so
convolab, counts the moving mean and variance as non-trainable weights. So the table compares
convolab's *trainable* count with PyTorch's parameters, and convolab's non-trainable count with
PyTorch's running_mean + running_var buffers. Exit status 1 if any pair differs.
"""

from __future__ import annotations

import sys

import torch

from convolab import zoo
from zoo_torch import torch_inception, torch_mobilenet, torch_resnet20, torch_vgg


PAIRS = [
    ("vgg", lambda: zoo.vgg(), torch_vgg),
    ("resnet20", lambda: zoo.resnet20(), torch_resnet20),
    ("inception", lambda: zoo.inception(), torch_inception),
    ("mobilenet", lambda: zoo.mobilenet(), torch_mobilenet),
    ("mobilenet alpha=0.5", lambda: zoo.mobilenet(alpha=0.5), lambda: torch_mobilenet(alpha=0.5)),
]


def torch_counts(model):
    params = sum(p.numel() for p in model.parameters())
    stats = sum(b.numel() for name, b in model.named_buffers() if name.endswith(("running_mean", "running_var")))
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(2, 3, 32, 32))
    if tuple(out.shape) != (2, 10):
        raise SystemExit(f"the PyTorch model gives shape {tuple(out.shape)}; expected (2, 10)")
    return params, stats


def main():
    print(
        f"{'model':<21}{'convolab total':>15}{'trainable':>11}{'non-train':>11}"
        f"{'torch params':>14}{'BN buffers':>12}  match"
    )
    ok = True
    for name, ours, theirs in PAIRS:
        model = ours()
        total = model.count_params()
        trainable = sum(w.size for w in model.trainable_weights)
        params, stats = torch_counts(theirs())
        same = trainable == params and total - trainable == stats
        ok &= same
        print(
            f"{name:<21}{total:>15,}{trainable:>11,}{total - trainable:>11,}{params:>14,}{stats:>12,}  "
            f"{'yes' if same else 'NO'}"
        )
    print(
        "(torch params = trainable parameters; BatchNorm running mean/var are buffers in PyTorch, "
        "non-trainable weights in Keras/convolab)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
