"""The lesson's three models in PyTorch (eager, CPU or CUDA) and Keras/TensorFlow, for side-by-side timing.

Optional: each builder imports its framework lazily and the benchmark skips a peer that is
not installed (``pip install torch==2.13.0``; ``pip install tensorflow-cpu``).
"""

from __future__ import annotations

import time

import numpy as np

SHAPES = {"simple": (28, 28, 1), "multi": (28, 28, 1), "lenet": (32, 32, 3)}


def torch_model(name, input_shape):
    from torch import nn

    h, w, c = input_shape
    if name == "simple":
        body = [nn.Conv2d(c, 9, 5), nn.ReLU(), nn.Flatten(), nn.Linear(9 * (h - 4) * (w - 4), 10)]
    elif name == "multi":
        body = [
            nn.Conv2d(c, 10, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(10, 20, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(20 * ((h - 4) // 2 - 4) // 2 * (((w - 4) // 2 - 4) // 2), 10),
        ]
    else:
        body = [
            nn.Conv2d(c, 6, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * (((h - 4) // 2 - 4) // 2) * (((w - 4) // 2 - 4) // 2), 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, 10),
        ]
    return nn.Sequential(*body)


def _sync(x):
    import torch

    if x.is_cuda:
        torch.cuda.synchronize()


def torch_train_epoch(model, x, y, batch_size, opt, seed=0):
    """One epoch of eager PyTorch training on NCHW tensors (shuffled, Adam, cross-entropy).

    On CUDA the tensors are expected there already (the whole set resident, as a fast GPU
    trainer keeps it) and the clock stops after the GPU has finished.
    """
    import torch

    n = len(x)
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(n)).to(x.device)
    lossf = torch.nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    for s in range(0, n, batch_size):
        idx = perm[s : s + batch_size]
        opt.zero_grad(set_to_none=True)
        loss = lossf(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
    _sync(x)
    return time.perf_counter() - t0


def torch_predict(model, x, batch_size):
    import torch

    t0 = time.perf_counter()
    with torch.inference_mode():
        for s in range(0, len(x), batch_size):
            model(x[s : s + batch_size])
    _sync(x)
    return time.perf_counter() - t0


def lesson_layers(L, name):
    """The lesson's layers for ``name``, from a Keras-style layers module ``L``
    (``keras.layers`` or ``convolab.keras.layers``: the same code builds both)."""
    if name == "simple":
        return [L.Conv2D(9, (5, 5), activation="relu"), L.Flatten(), L.Dense(10)]
    if name == "multi":
        return [
            L.Conv2D(10, (5, 5), activation="relu"),
            L.MaxPooling2D(),
            L.Conv2D(20, (5, 5), activation="relu"),
            L.MaxPooling2D(),
            L.Flatten(),
            L.Dense(10),
        ]
    return [
        L.Conv2D(6, 5, activation="relu"),
        L.MaxPooling2D(2, 2),
        L.Conv2D(16, 5, activation="relu"),
        L.MaxPooling2D(2, 2),
        L.Flatten(),
        L.Dense(120, activation="relu"),
        L.Dense(84, activation="relu"),
        L.Dense(10),
    ]


def keras_style_model(keras, name, input_shape):
    """Compiled with Adam and cross-entropy on logits, the same way in Keras and in convolab."""
    model = keras.Sequential([keras.Input(shape=input_shape)] + lesson_layers(keras.layers, name))
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["acc"])
    return model
