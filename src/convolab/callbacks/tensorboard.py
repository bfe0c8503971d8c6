"""TensorBoard: write the logs of ``fit``/``evaluate`` as TensorBoard event files (Keras's callback).

Written with tensorboardX, an optional dependency: ``pip install "convolab[tensorboard]"``.
"""

from __future__ import annotations

import itertools
import json
import numbers
import os
import time

import numpy as np

from ..backend import to_host
from .base import Callback

_INSTALL_HINT = 'pip install "convolab[tensorboard]"'
# tensorboardX names a file after the second and the host alone: two writers opened in one directory
# within a second (train/ by fit and then evaluate, or the model config's writer) would overwrite each
# other. A per-process counter in the suffix keeps the names apart, and in order of creation.
_file_numbers = itertools.count()


def _tensorboardx():
    try:
        import tensorboardX
    except ImportError as e:
        raise ImportError(
            f"keras.callbacks.TensorBoard needs the tensorboardX package, which is not installed "
            f"({e}); install it with: {_INSTALL_HINT}"
        ) from e
    return tensorboardX


class TensorBoard(Callback):
    """Log losses, metrics and weight histograms for TensorBoard, laid out as Keras 3 does.

    Under ``log_dir``: ``train/`` holds ``epoch_loss``, ``epoch_<metric>`` and ``epoch_learning_rate``
    (step = epoch, from 0), ``validation/`` holds the ``val_`` logs under the same names
    (``epoch_loss``...) and, after each evaluation, ``evaluation_<name>_vs_iterations``
    (step = optimizer iterations). With ``update_freq='batch'`` or an int ``N``, ``train/`` also
    gets ``batch_<name>`` (the running means) every ``N`` training batches, counted across epochs
    from 1. Look at them with ``tensorboard --logdir <log_dir>``.

    Args:
        log_dir: directory for the event files (one per writer, new files each run).
        histogram_freq: every this many epochs, write a histogram of each weight
            (``<layer>/<weight>/histogram`` in ``train/``); 0 writes none.
        write_graph: write the model's config (``{"class_name": "Sequential", "config": ...}``) as
            Keras's ``graph_keras_model`` summary, shown in TensorBoard's graph tab.
        write_images: with ``histogram_freq``, also write each weight as an image
            (``<layer>/<weight>/image``), scaled to [0, 1].
        write_steps_per_second: also log training steps per second (``epoch_steps_per_second``,
            and ``batch_steps_per_second`` with batch-level logging).
        update_freq: ``'epoch'``, ``'batch'`` (= 1) or a positive int number of batches.
        profile_batch, embeddings_freq, embeddings_metadata: Keras's profiling and embedding
            projector; not supported by convolab, so anything but the default raises ``ValueError``.

    Raises:
        ImportError: tensorboardX is not installed (``pip install "convolab[tensorboard]"``).
    """

    def __init__(
        self,
        log_dir="logs",
        histogram_freq=0,
        write_graph=True,
        write_images=False,
        write_steps_per_second=False,
        update_freq="epoch",
        profile_batch=0,
        embeddings_freq=0,
        embeddings_metadata=None,
    ):
        super().__init__()
        self._tbx = _tensorboardx()
        unsupported = {
            name: value
            for name, value in (
                ("profile_batch", profile_batch),
                ("embeddings_freq", embeddings_freq),
                ("embeddings_metadata", embeddings_metadata),
            )
            if value not in (0, None)
        }
        if unsupported:
            raise ValueError(
                "TensorBoard: "
                + ", ".join(f"{k}={v!r}" for k, v in unsupported.items())
                + " is not supported by convolab (expected profile_batch=0, embeddings_freq=0, "
                "embeddings_metadata=None)"
            )
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch" and (
            isinstance(update_freq, bool) or not isinstance(update_freq, numbers.Integral) or update_freq < 1
        ):
            raise ValueError(
                f"TensorBoard: `update_freq` must be 'epoch', 'batch' or a positive int; got {update_freq!r}"
            )
        if isinstance(histogram_freq, bool) or not isinstance(histogram_freq, numbers.Integral) or histogram_freq < 0:
            raise ValueError(f"TensorBoard: `histogram_freq` must be an int >= 0; got {histogram_freq!r}")
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = int(histogram_freq)
        self.write_graph = write_graph
        self.write_images = write_images
        self.write_steps_per_second = write_steps_per_second
        self.update_freq = update_freq
        self._train_dir = os.path.join(self.log_dir, "train")
        self._val_dir = os.path.join(self.log_dir, "validation")
        self._writers = {}
        self._training = False
        self._graph_written = False
        self._global_train_batch = 0
        self._global_test_batch = 0
        self._batch_start_time = 0.0
        self._epoch_start_time = 0.0
        self._epoch_start_iterations = 0

    # -- writers --------------------------------------------------------------
    def _writer(self, which):
        # Created on first use, so a run that logs nothing to validation/ leaves no empty file there.
        if which not in self._writers:
            self._writers[which] = self._tbx.SummaryWriter(
                self._train_dir if which == "train" else self._val_dir, filename_suffix=_file_suffix()
            )
        return self._writers[which]

    def _scalar(self, which, tag, value, step):
        self._writer(which).add_scalar(tag, float(value), int(step))

    def _close_writers(self):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    # -- fit ------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._training = True
        self._global_train_batch = 0
        if self.write_graph and not self._graph_written:
            self._write_model_config()
            self._graph_written = True

    def on_train_end(self, logs=None):
        self._training = False
        self._close_writers()

    def on_epoch_begin(self, epoch, logs=None):
        if self.write_steps_per_second:
            self._epoch_start_iterations = self._iterations()
            self._epoch_start_time = time.perf_counter()

    def on_train_batch_begin(self, batch, logs=None):
        self._global_train_batch += 1
        if self.write_steps_per_second:
            self._batch_start_time = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self.update_freq == "epoch" or self._global_train_batch % self.update_freq:
            return
        step = self._global_train_batch
        if self.write_steps_per_second:
            seconds = time.perf_counter() - self._batch_start_time
            self._scalar("train", "batch_steps_per_second", 1.0 / seconds if seconds > 0 else 0.0, step)
        for name, value in (logs or {}).items():
            if _is_scalar(value):
                self._scalar("train", "batch_" + name, value, step)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        val = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None and hasattr(optimizer, "learning_rate"):
            train["learning_rate"] = float(optimizer.learning_rate)
        if self.write_steps_per_second:
            seconds = time.perf_counter() - self._epoch_start_time
            steps = self._iterations() - self._epoch_start_iterations
            train["steps_per_second"] = steps / seconds if seconds > 0 else 0.0
        for which, values in (("train", train), ("val", val)):
            for name, value in values.items():
                if _is_scalar(value):
                    self._scalar(which, "epoch_" + name, value, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._write_weights(epoch)

    # -- evaluate (and fit's validation) --------------------------------------
    def on_test_batch_begin(self, batch, logs=None):
        self._global_test_batch += 1

    def on_test_end(self, logs=None):
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            for name, value in (logs or {}).items():
                if _is_scalar(value):
                    self._scalar("val", f"evaluation_{name}_vs_iterations", value, optimizer.iterations)
        if not self._training:  # a standalone evaluate(): nothing else will close the files
            self._close_writers()

    # -- what is written --------------------------------------------------------
    def _iterations(self):
        optimizer = getattr(self.model, "optimizer", None)
        return getattr(optimizer, "iterations", 0)

    def _write_weights(self, epoch):
        writer = self._writer("train")
        for layer in self.model.layers:
            for key, weight in layer.params.items():
                tag = f"{layer.name}/{key}"
                weight = np.asarray(to_host(weight), dtype=np.float64)  # a GPU array is copied back first
                writer.add_histogram(f"{tag}/histogram", weight, epoch)
                if self.write_images:
                    image = _weight_image(weight)
                    if image is not None:
                        writer.add_images(f"{tag}/image", image, epoch, dataformats="NHWC")
        writer.flush()

    def _write_model_config(self):
        """Keras's ``keras_model_summary``: the model as JSON under the ``graph_keras_model`` plugin."""
        from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboardX.proto.tensor_pb2 import TensorProto
        from tensorboardX.proto.tensor_shape_pb2 import TensorShapeProto

        get_config = getattr(self.model, "get_config", None)
        if get_config is None:
            return
        text = json.dumps({"class_name": type(self.model).__name__, "config": get_config()}, default=str)
        metadata = SummaryMetadata(
            plugin_data=SummaryMetadata.PluginData(plugin_name="graph_keras_model", content=b"1")
        )
        tensor = TensorProto(dtype="DT_STRING", string_val=[text.encode("utf-8")], tensor_shape=TensorShapeProto())
        summary = Summary(value=[Summary.Value(tag="keras", metadata=metadata, tensor=tensor)])
        # SummaryWriter has no public way to write a raw summary: a FileWriter of its own, in train/.
        writer = self._tbx.FileWriter(self._train_dir, filename_suffix=_file_suffix())
        writer.add_summary(summary, global_step=0)
        writer.close()


def _file_suffix():
    return f".{os.getpid()}.{next(_file_numbers):06d}"


def _is_scalar(value):
    return isinstance(value, numbers.Real) or (isinstance(value, np.ndarray) and value.ndim == 0)


def _weight_image(w):
    """A weight as a batch of grey images ``(N, H, W, 1)`` in [0, 1], as Keras lays them out; None if it can't."""
    w = np.squeeze(w)
    if w.ndim == 1:  # a bias: one column
        w = w.reshape(1, -1, 1, 1)
    elif w.ndim == 2:  # a Dense kernel, the long side across
        if w.shape[0] > w.shape[1]:
            w = w.T
        w = w.reshape(1, w.shape[0], w.shape[1], 1)
    elif w.ndim == 3:  # a conv kernel (kh, kw, out) with one input channel: one image per filter
        w = np.transpose(w, (2, 0, 1))[..., None]
    else:
        return None
    lo, hi = w.min(), w.max()
    return (w - lo) / (hi - lo) if hi > lo else np.zeros_like(w)
