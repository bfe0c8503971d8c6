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
from torch import nn

from convolab import zoo


def conv_bn_relu(cin, cout, k, stride=1):
    return [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2), nn.BatchNorm2d(cout), nn.ReLU()]


def torch_vgg(widths=(32, 64, 128), convs=2, size=32, classes=10):
    layers, cin = [], 3
    for w in widths:
        for _ in range(convs):
            layers += conv_bn_relu(cin, w, 3)
            cin = w
        layers.append(nn.MaxPool2d(2))
        size //= 2
    layers += [nn.Flatten(), nn.Linear(cin * size * size, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(0.3),
               nn.Linear(128, classes)]
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(*conv_bn_relu(cin, cout, 3, stride), nn.Conv2d(cout, cout, 3, padding=1),
                                  nn.BatchNorm2d(cout))
        # option B: a 1x1 projection (no BN) where the shape changes, as Keras's CIFAR-10 example
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=stride) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


def torch_resnet20(n=3, classes=10):
    layers, cin = conv_bn_relu(3, 16, 3), 16
    for stage, cout in enumerate((16, 32, 64)):
        for block in range(n):
            layers.append(BasicBlock(cin, cout, 2 if stage and not block else 1))
            cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes))


class InceptionBlock(nn.Module):
    def __init__(self, cin, f1, f3r, f3, f5r, f5, fp):
        super().__init__()
        self.b1 = nn.Sequential(*conv_bn_relu(cin, f1, 1))
        self.b3 = nn.Sequential(*conv_bn_relu(cin, f3r, 1), *conv_bn_relu(f3r, f3, 3))
        self.b5 = nn.Sequential(*conv_bn_relu(cin, f5r, 1), *conv_bn_relu(f5r, f5, 5))
        self.bp = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), *conv_bn_relu(cin, fp, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], dim=1)


def torch_inception(blocks=((16, 16, 24, 4, 8, 8), (32, 32, 48, 8, 16, 16), (48, 48, 64, 8, 16, 16)), classes=10):
    layers, cin = conv_bn_relu(3, 32, 3), 32
    for i, b in enumerate(blocks):
        if i:
            layers.append(nn.MaxPool2d(2))
        layers.append(InceptionBlock(cin, *b))
        cin = b[0] + b[2] + b[4] + b[5]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(1e-3), nn.Linear(cin, classes))


def torch_mobilenet(alpha=1.0, blocks=((64, 1), (128, 2), (128, 1), (256, 2), (256, 1)), classes=10):
    cin = int(32 * alpha)
    layers = [nn.Conv2d(3, cin, 3, padding=1, bias=False), nn.BatchNorm2d(cin), nn.ReLU6()]
    for filters, stride in blocks:
        cout = int(filters * alpha)
        layers += [nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin, bias=False), nn.BatchNorm2d(cin),
                   nn.ReLU6(), nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU6()]
        cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(1e-3), nn.Linear(cin, classes))


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
    print(f"{'model':<21}{'convolab total':>15}{'trainable':>11}{'non-train':>11}"
          f"{'torch params':>14}{'BN buffers':>12}  match")
    ok = True
    for name, ours, theirs in PAIRS:
        model = ours()
        total = model.count_params()
        trainable = sum(w.size for w in model.trainable_weights)
        params, stats = torch_counts(theirs())
        same = trainable == params and total - trainable == stats
        ok &= same
        print(f"{name:<21}{total:>15,}{trainable:>11,}{total - trainable:>11,}{params:>14,}{stats:>12,}  "
              f"{'yes' if same else 'NO'}")
    print("(torch params = trainable parameters; BatchNorm running mean/var are buffers in PyTorch, "
          "non-trainable weights in Keras/convolab)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
