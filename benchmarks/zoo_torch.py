"""convolab.zoo's four architectures written again in PyTorch, from their descriptions.

Independent of convolab's code (``nn.Conv2d`` with ``padding=k // 2`` for 'same', ``groups=C``
for a depthwise conv, ``bias=False`` where convolab's has no bias), for 32x32x3 images and 10
classes. Used by ``zoo_params.py`` (parameter counts) and ``run.py`` (speed); PyTorch is not a
convolab dependency (``pip install torch==2.13.0``, the CPU build).
"""

from __future__ import annotations

import torch
from torch import nn


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
    layers += [
        nn.Flatten(),
        nn.Linear(cin * size * size, 128),
        nn.BatchNorm1d(128),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(128, classes),
    ]
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(
            *conv_bn_relu(cin, cout, 3, stride), nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout)
        )
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
        layers += [
            nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin, bias=False),
            nn.BatchNorm2d(cin),
            nn.ReLU6(),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(),
        ]
        cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(1e-3), nn.Linear(cin, classes))


#: name -> builder of the PyTorch twin of ``convolab.zoo.get(name)``
BUILDERS = {"vgg": torch_vgg, "resnet20": torch_resnet20, "inception": torch_inception, "mobilenet": torch_mobilenet}
