"""Small functional models that cover the graph cases (a residual net, two inputs and two outputs with
every merge, a shared layer, a nested model called twice), their inputs and their predictions, for the
file and ONNX tests."""

import numpy as np

from convolab import keras

L = keras.layers


def images(shape, n=6, seed=1):
    return np.random.default_rng(seed).normal(size=(n,) + shape).astype(np.float32)


def resnet():
    inp = keras.Input(shape=(8, 8, 3), name="image")
    x = L.Conv2D(4, 3, padding="same", activation="relu")(inp)
    for _ in range(2):
        y = L.Conv2D(4, 3, padding="same", activation="relu")(x)
        y = L.Conv2D(4, 3, padding="same")(y)
        x = L.Add()([x, y])
        x = L.ReLU()(x)
    x = L.MaxPooling2D(2)(x)
    x = L.Dropout(0.25, seed=5)(x)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inp, L.Dense(3, activation="softmax")(x), name="toy_resnet")


def two_in_two_out():
    a, b = keras.Input(shape=(6, 6, 2), name="a"), keras.Input(shape=(6, 6, 2), name="b")
    x = L.Conv2D(3, 3, padding="same")(a)
    y = L.Conv2D(3, 3, padding="same")(b)
    merged = [
        L.Add()([x, y]),
        L.Subtract()([x, y]),
        L.Multiply()([x, y]),
        L.Average()([x, y, x]),
        L.Maximum()([x, y]),
        L.Minimum()([x, y]),
    ]
    c = L.Concatenate()(merged)
    out1 = L.Dense(2)(L.Flatten()(c))
    out2 = L.GlobalMaxPooling2D()(L.Concatenate(axis=1)([x, y]))
    return keras.Model([a, b], [out1, out2])


def shared():
    a, b = keras.Input(shape=(5,)), keras.Input(shape=(5,))
    dense = L.Dense(4, activation="tanh")
    out = L.Concatenate()([dense(a), dense(b), dense(dense.__class__(5)(a))])
    return keras.Model([a, b], L.Dense(1)(out))


def nested():
    block_in = keras.Input(shape=(6, 6, 2))
    h = L.Conv2D(2, 3, padding="same")(block_in)
    block = keras.Model(block_in, L.Add()([block_in, h]), name="block")
    head = keras.models.Sequential([L.Flatten(), L.Dense(3)], name="head")
    head.build((None, 6, 6, 2))
    inp = keras.Input(shape=(6, 6, 2))
    x = block(block(inp))  # a nested model shared: called twice
    return keras.Model(inp, head(x))


def inputs_for(model, n=6):
    xs = [images(t.shape[1:], n, seed=i) for i, t in enumerate(model.inputs)]
    return xs if len(xs) > 1 else xs[0]


def predictions(model, x):
    # predict concatenates one output; a model with several is called directly
    out = model(x, training=False) if len(model.outputs or [0]) > 1 else model.predict(x, verbose=0)
    return [np.asarray(o) for o in out] if isinstance(out, list) else [out]
