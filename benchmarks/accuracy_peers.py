"""The lesson's LeNet on the CIFAR-10 subset in Keras/TensorFlow, with the lesson's settings.

    python benchmarks/accuracy_peers.py [--data-dir ../shared/data]

Prints val_acc per epoch, to set beside convolab's run of examples/lesson.py on the same
subset (accuracy on 5,085 training images is far below the full set's, so compare the two
systems with each other, never with published figures). Needs `pip install tensorflow-cpu`.
"""

import argparse
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args()
    import keras

    with np.load(args.data_dir / "cifar10_subset" / "cifar10_subset.npz", allow_pickle=False) as d:
        x_train, y_train, x_test, y_test = (d[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    x_train = x_train.astype(np.float32) / 255.0
    x_test = x_test.astype(np.float32) / 255.0
    for seed in (int(s) for s in args.seeds.split(",")):
        keras.utils.set_random_seed(seed)
        L = keras.layers
        model = keras.models.Sequential(
            [
                keras.Input(shape=(32, 32, 3)),
                L.Conv2D(filters=6, kernel_size=5, strides=1, activation="relu"),
                L.MaxPooling2D(pool_size=2, strides=2),
                L.Conv2D(filters=16, kernel_size=5, strides=1, activation="relu"),
                L.MaxPooling2D(pool_size=2, strides=2),
                L.Flatten(),
                L.Dense(120, activation="relu"),
                L.Dense(84, activation="relu"),
                L.Dense(10, activation="softmax"),
            ]
        )
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["acc"])
        hist = model.fit(x_train, y_train, validation_data=(x_test, y_test), epochs=10, verbose=0)
        print(f"keras seed {seed}: val_acc", [round(v, 4) for v in hist.history["val_acc"]])


if __name__ == "__main__":
    main()
