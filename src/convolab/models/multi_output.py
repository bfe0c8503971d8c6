"""Training a model with several outputs: one loss (and metrics) per output, as Keras compiles them.

    model = keras.Model(inputs, [digit, parity])          # two output layers, named
    model.compile(optimizer="adam",
                  loss={"digit": "sparse_categorical_crossentropy", "parity": "binary_crossentropy"},
                  loss_weights={"digit": 1.0, "parity": 0.5},
                  metrics={"digit": ["acc"]})
    model.fit(x, {"digit": y_digit, "parity": y_parity})  # or a list in output order

The training loss is ``sum(w_i * loss_i)``; the logs hold it as ``loss`` and each output's as
``<output>_loss``, and each metric as ``<output>_<metric>`` (Keras 3's names). A single loss (or a
flat list of metrics) applies to every output; an output with no loss in a dict is not trained.
"""

from __future__ import annotations

import numpy as np

from .. import losses as losses_mod
from .. import metrics as metrics_mod
from ..metrics.reduction import Mean


def _by_output(value, names, what, owner, default=None):
    """``value`` as one entry per output: a dict keyed by output name, a list, or one for all."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ValueError(f"{owner}: `{what}` names outputs {unknown}; the outputs are {list(names)}")
        return [value.get(n, default) for n in names]
    if isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise ValueError(f"{owner}: `{what}` has {len(value)} entries for {len(names)} outputs {list(names)}")
        return list(value)
    return [value] * len(names)


class OutputLosses:
    """The per-output losses and weights of a multi-output model (what ``model.loss`` holds)."""

    fuses_softmax = False

    def __init__(self, names, loss, loss_weights, owner):
        self.names = list(names)
        specs = _by_output(loss, self.names, "loss", owner)
        # one object per output: a string or class gives each output its own instance
        self.losses = [None if s is None else losses_mod.get(s) for s in specs]
        if all(l is None for l in self.losses):
            raise ValueError(f"{owner}: `loss` gives no output a loss")
        weights = _by_output(1.0 if loss_weights is None else loss_weights, self.names, "loss_weights", owner, 1.0)
        for name, w in zip(self.names, weights):
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not np.isfinite(w) or w < 0:
                raise ValueError(f"{owner}: the loss weight of output '{name}' must be a number >= 0; got {w!r}")
        self.weights = [float(w) for w in weights]
        self.name = "loss"

    def prepare_targets(self, y, output_shapes, owner):
        """Targets as a list in output order (``None`` where an output has no loss)."""
        if isinstance(y, dict):
            missing = [n for n, l in zip(self.names, self.losses) if l is not None and n not in y]
            if missing:
                raise ValueError(f"{owner}: no targets for outputs {missing}; `y` has {sorted(y)}")
            ys = [y.get(n) for n in self.names]
        elif isinstance(y, (list, tuple)):
            if len(y) != len(self.names):
                raise ValueError(f"{owner}: `y` has {len(y)} target arrays for {len(self.names)} outputs {self.names}")
            ys = list(y)
        else:
            raise ValueError(
                f"{owner} has {len(self.names)} outputs {self.names}: pass `y` as a list or a dict "
                f"of target arrays; got {type(y).__name__}"
            )
        out = []
        for name, loss, target, shape in zip(self.names, self.losses, ys, output_shapes):
            if loss is None:
                out.append(None)
                continue
            arr = np.asarray(target)
            if arr.ndim == 0 or arr.dtype == object:
                raise ValueError(f"{owner}: the targets of output '{name}' must be a numeric array; got {target!r}")
            out.append(loss.prepare_targets(arr, shape))
        return out

    def get_config(self):
        return {"names": self.names, "weights": self.weights}


class OutputMetrics:
    """The loss trackers and the metrics of every output; the same interface as CompileMetrics."""

    def __init__(self, names, per_output_metrics, per_output_weighted):
        self.loss_tracker = Mean(name="loss")
        self.output_trackers = [Mean(name=f"{n}_loss") for n in names]
        self.output_names = list(names)
        self.per_output = [metrics_mod.CompileMetrics(m, w) for m, w in zip(per_output_metrics, per_output_weighted)]
        self.names = [f"{n}_loss" for n in names] + [
            f"{n}_{m}" for n, cm in zip(names, self.per_output) for m in cm.names
        ]

    def reset_state(self):
        self.loss_tracker.reset_state()
        for t in self.output_trackers:
            t.reset_state()
        for cm in self.per_output:
            cm.reset_state()

    def update_state(self, loss, batch_size, y_true, y_pred, sample_weight=None, output_losses=None):
        self.loss_tracker.update_state(loss, sample_weight=batch_size)
        for tracker, value in zip(self.output_trackers, output_losses or []):
            if value is not None:
                tracker.update_state(value, sample_weight=batch_size)
        for cm, yt, yp in zip(self.per_output, y_true, y_pred):
            if yt is not None and (cm.metrics or cm.weighted_metrics):
                for m in cm.metrics:
                    m.update_state(yt, yp)
                for m in cm.weighted_metrics:
                    m.update_state(yt, yp, sample_weight=sample_weight)

    def result(self):
        logs = {"loss": self.loss_tracker.result()}
        for name, tracker in zip(self.output_names, self.output_trackers):
            logs[f"{name}_loss"] = tracker.result()
        for name, cm in zip(self.output_names, self.per_output):
            for key, value in cm.result().items():
                if key != "loss":
                    logs[f"{name}_{key}"] = value
        return logs


def metric_specs_by_output(spec, names, what, owner):
    """``compile``'s ``metrics`` (or ``weighted_metrics``) as one list of specs per output, in output order.

    ``spec`` is None, a dict keyed by output name, a list of lists (one per output) or a flat list
    (every output gets it, as Keras 2 did).
    """
    if spec is None:
        return [[] for _ in names]
    if isinstance(spec, dict):
        entries = _by_output(spec, names, what, owner, [])
    elif isinstance(spec, (list, tuple)) and spec and all(isinstance(s, (list, tuple)) for s in spec):
        entries = _by_output(list(spec), names, what, owner)
    else:
        entries = [spec] * len(names)
    return [metrics_mod.check_specs(e if e is not None else [], what) for e in entries]


def resolve_metrics(model, metrics, weighted_metrics):
    """Per-output metric objects from ``compile``'s ``metrics``/``weighted_metrics`` structures."""
    names = model.output_names
    owner = f"{model.describe()}.compile"
    shapes = model.output_shape
    out_m, out_w = [], []
    for i, (ms, ws) in enumerate(
        zip(
            metric_specs_by_output(metrics, names, "metrics", owner),
            metric_specs_by_output(weighted_metrics, names, "weighted_metrics", owner),
        )
    ):
        loss = model.loss.losses[i] if model.loss is not None else None  # compile(loss=None): the model adds its own
        width = shapes[i][-1] if shapes else None
        out_m.append([metrics_mod.get(m, loss, width) for m in ms])
        out_w.append([metrics_mod.get(m, loss, width) for m in ws])
    return OutputMetrics(names, out_m, out_w)
