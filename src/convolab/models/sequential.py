"""Sequential: a stack of layers with Keras's ``summary``/``compile``/``fit``/``evaluate``/``predict``."""
from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np

from .. import backend
from .. import losses as losses_mod
from .. import metrics as metrics_mod
from .. import optimizers as optimizers_mod
from ..callbacks import CallbackList, History, ProgbarLogger
from ..layers.base import Layer, shape_str, unique_name
from ..layers.input_layer import InputLayer
from ..layers.keras_tensor import KerasTensor
from ..random import get_generator
from . import data_checks as checks
from . import engine, parallel
from .summary import format_summary


class Sequential:
    """A linear stack of layers.

    Args:
        layers: list of layers; an optional leading ``keras.Input(shape=...)`` /
            ``InputLayer`` sets the input shape, as does ``input_shape=`` on the first layer.
        name: model name (default ``sequential``, ``sequential_1``...).
    """

    def __init__(self, layers=None, name=None, trainable=True):
        self.name = name or unique_name("sequential")
        self.layers: list[Layer] = []
        self._input_shape = None
        self.built = False
        self.compiled = False
        self.stop_training = False
        self.stop_evaluating = False  # a callback sets these to end evaluate/predict early (Keras)
        self.stop_predicting = False
        self.optimizer = None
        self.loss = None
        self.metrics_list = []
        self.weighted_metrics_list = []
        self._compiled_metrics = None
        self.history = None
        self.dtype = backend.floatx()
        self._runner = None
        self._first_trainable = 0
        self._last_logs = {}
        for layer in layers or []:
            self.add(layer)

    def describe(self):
        return f"Sequential model '{self.name}'"

    # -- construction -------------------------------------------------------
    def add(self, layer):
        """Append a layer (a ``keras.Input`` tensor or an ``InputLayer`` only sets the input shape)."""
        if isinstance(layer, KerasTensor) and layer.node is not None and not layer.node.inputs:
            layer = layer.node.layer  # keras.Input(...): its InputLayer
        if isinstance(layer, InputLayer):
            if self.layers:
                raise ValueError(f"{self.describe()}: an Input can only come first")
            self._input_shape = (None,) + tuple(layer.shape)
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"{self.describe()}: add() expects a convolab layer; got {type(layer).__name__}")
        if any(layer is other for other in self.layers):
            raise ValueError(f"{self.describe()}: layer '{layer.name}' is already in the model")
        if not self.layers:
            # Data is cast to what the first layer computes in (Keras autocasts a layer's inputs
            # to its dtype): a float64 model must not see its inputs rounded to float32.
            self.dtype = layer.dtype
        if not self.layers and self._input_shape is None and layer._input_shape_arg is not None:
            self._input_shape = (None,) + layer._input_shape_arg
        self.layers.append(layer)
        self.built = False
        if self._input_shape is not None:
            self.build(self._input_shape)

    def pop(self):
        layer = self.layers.pop()
        self.built = False
        if self._input_shape is not None and self.layers:
            self.build(self._input_shape)
        return layer

    def build(self, input_shape=None):
        """Build every layer in turn for ``input_shape`` (batch axis first, may be ``None``)."""
        if input_shape is None:
            input_shape = self._input_shape
        if input_shape is None:
            raise ValueError(
                f"{self.describe()} has no input shape yet: pass input_shape=(...) to the first layer, "
                "start with keras.Input(shape=(...)), or call fit/predict with data"
            )
        shape = (None,) + tuple(input_shape[1:])
        self._input_shape = shape
        for layer in self.layers:
            if layer.built:
                if len(shape) != len(layer.input_shape) or any(
                    a is not None and b is not None and a != b for a, b in zip(shape[1:], layer.input_shape[1:])
                ):
                    raise ValueError(
                        f"{layer.describe()} was built for input shape {shape_str(layer.input_shape)}; "
                        f"in this model it gets {shape_str(shape)}"
                    )
            else:
                layer.build(shape)
            shape = layer.output_shape
        first_trainable = next((i for i, l in enumerate(self.layers) if l.params), len(self.layers))
        for i, layer in enumerate(self.layers):
            layer.need_input_grad = i > first_trainable
        self._first_trainable = first_trainable
        self.built = True

    @property
    def input_shape(self):
        return self._input_shape

    @property
    def output_shape(self):
        return self.layers[-1].output_shape if self.built and self.layers else None

    # -- weights ------------------------------------------------------------
    @property
    def weights(self):
        return [w for layer in self.layers for w in layer.weights]

    @property
    def trainable_weights(self):
        return [w for layer in self.layers for w in layer.trainable_weights]

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        weights = list(weights)
        expected = sum(len(layer.params) for layer in self.layers)
        if len(weights) != expected:
            raise ValueError(f"{self.describe()} expects {expected} weight arrays; got {len(weights)}")
        i = 0
        for layer in self.layers:
            n = len(layer.params)
            layer.set_weights(weights[i : i + n])
            i += n

    def count_params(self):
        return sum(layer.count_params() for layer in self.layers)

    def get_layer(self, name=None, index=None):
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"{self.describe()} has no layer named {name!r}; layers: {[l.name for l in self.layers]}")

    def summary(self, line_length=65, print_fn=None):
        """Print Keras's summary table; the model must know its input shape."""
        if not self.built:
            self.build()
        text = format_summary(self, line_length=line_length)
        (print_fn or print)(text)

    # -- compile ------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, weighted_metrics=None,
                **kwargs):
        """Configure training. Defaults as Keras: ``optimizer='rmsprop'``.

        ``loss``: a name, a ``keras.losses`` class or instance, or one of Keras's loss functions
        (``keras.losses.categorical_crossentropy``...). ``metrics`` and ``weighted_metrics``: lists of
        names, ``keras.metrics.Metric`` objects or functions ``f(y_true, y_pred)``; as in Keras 3,
        only ``weighted_metrics`` see ``sample_weight``/``class_weight``.
        """
        for key in ("run_eagerly", "jit_compile", "steps_per_execution", "auto_scale_loss"):
            kwargs.pop(key, None)
        if kwargs:
            raise TypeError(f"{self.describe()}.compile: unexpected keyword argument(s) {', '.join(sorted(kwargs))}")
        if loss is None:
            raise ValueError(f"{self.describe()}.compile: a `loss` is required, e.g. loss='sparse_categorical_crossentropy'")
        self.optimizer = optimizers_mod.get(optimizer)
        self.loss = losses_mod.get(loss)
        self._metric_names = metrics_mod.check_specs(metrics, "metrics")
        self._weighted_metric_names = metrics_mod.check_specs(weighted_metrics, "weighted_metrics")
        self.compiled = True
        self._resolve_metrics()

    def _resolve_metrics(self):
        width = self.output_shape[-1] if self.built else None
        self.metrics_list = [metrics_mod.get(m, self.loss, width) for m in self._metric_names]
        self.weighted_metrics_list = [metrics_mod.get(m, self.loss, width) for m in self._weighted_metric_names]
        self._compiled_metrics = metrics_mod.CompileMetrics(self.metrics_list, self.weighted_metrics_list)

    def get_compile_config(self):
        """What ``compile`` was given: ``{'optimizer', 'loss', 'metrics', 'weighted_metrics'}`` as objects."""
        if not self.compiled:
            return None
        return {"optimizer": self.optimizer, "loss": self.loss, "metrics": list(self._metric_names),
                "weighted_metrics": list(self._weighted_metric_names)}

    @property
    def metrics_names(self):
        names = self._compiled_metrics.names if self._compiled_metrics is not None else []
        return ["loss"] + list(names)

    def reset_metrics(self):
        """Reset the loss tracker and every compiled metric (Keras's ``reset_metrics``)."""
        if self._compiled_metrics is not None:
            self._compiled_metrics.reset_state()

    # -- forward / backward -------------------------------------------------
    def _forward(self, x, training, logits=False):
        return engine.forward(self.layers, x, training, logits)

    def _weights_finite(self) -> bool:
        # Summed in float64 so large finite weights cannot overflow into a false alarm.
        return all(math.isfinite(p.sum(dtype=np.float64)) for layer in self.layers for p in layer.params.values())

    def _params_and_grads(self):
        params, grads = [], []
        for layer in self.layers:
            if layer.trainable:
                for key, p in layer.params.items():
                    params.append(p)
                    grads.append(layer.grads[key])
        return params, grads

    def train_on_batch(self, x, y, sample_weight=None, class_weight=None, return_dict=False):
        """One optimiser step on one batch; returns the loss (and metrics if compiled with any).

        The metrics are reset first, so they describe this batch alone.
        """
        self._check_compiled("train_on_batch")
        x, y = self._prepare(x, y)
        sw = self._sample_weights(y, sample_weight, class_weight, "train_on_batch")
        self.reset_metrics()
        logs = self._train_step(x, y, sw)
        if return_dict:
            return logs
        return logs["loss"] if len(logs) == 1 else [logs[k] for k in self.metrics_names]

    def _train_step(self, x, y, sample_weight=None):
        """One optimiser step on one batch, on threads when a ShardRunner is active.

        Updates the loss tracker and the metrics with the batch; returns their running values.
        """
        if self._runner is not None:
            loss, out = self._runner.train_step(x, y, sample_weight)
        else:
            fused = engine.fused_softmax(self)
            out, loss, dout = engine.loss_and_grad(self.layers, self.loss, x, y, True, fused, sample_weight)
            out = engine.metric_output(out, fused)
            if math.isfinite(loss):
                engine.backward(self.layers, dout, self._first_trainable, fused)
                params, grads = self._params_and_grads()
                self.optimizer.apply(params, grads)
        self._compiled_metrics.update_state(loss, len(x), y, out, sample_weight)
        return self._compiled_metrics.result()

    @contextlib.contextmanager
    def _threads(self, batch_size):
        """Run the enclosed batches as shards on threads when that can pay (see parallel.py)."""
        if self._runner is not None:  # already inside fit: validation and callbacks reuse it
            yield
            return
        n = parallel.default_num_threads()
        with parallel.blas_single_threaded():
            if not parallel.worth_sharding(self, batch_size, n):
                yield
                return
            self._runner = parallel.ShardRunner(self, n)
            try:
                yield
            finally:
                self._runner.close()
                self._runner = None

    # -- data preparation ---------------------------------------------------
    def _ensure_built_for(self, x):
        if not self.layers:
            raise ValueError(f"{self.describe()} has no layers; add some before training or predicting")
        first = self.layers[0]
        expected = self._input_shape
        if expected is None:
            ndim = first.input_ndim
            if ndim is not None and x.ndim != ndim:
                hint = ("; add the channel axis with np.expand_dims(x, -1) (grey images need shape (N, H, W, 1))"
                        if x.ndim == ndim - 1 else "")
                raise ValueError(
                    f"{first.describe()} expects {ndim}-D input {first.expected_layout()}; got data of shape "
                    f"{shape_str(x.shape)}{hint}"
                )
            self.build((None,) + tuple(x.shape[1:]))
            if self.compiled:
                self._resolve_metrics()
            expected = self._input_shape
        if len(x.shape) != len(expected) or any(
            e is not None and g != e for g, e in zip(x.shape[1:], expected[1:])
        ):
            hint = ""
            if tuple(x.shape) == tuple(expected[1:]):
                hint = "; this looks like one sample without the batch axis: use x[None] or np.expand_dims(x, 0)"
            elif len(x.shape) == len(expected) - 1 and expected[-1] == 1 and tuple(x.shape[1:]) == tuple(expected[1:-1]):
                hint = "; add the channel axis with x[..., None] or np.expand_dims(x, -1)"
            raise ValueError(
                f"{first.describe()} expects input shape {shape_str(expected)}; got data of shape "
                f"{shape_str(x.shape)}{hint}"
            )

    def _prepare(self, x, y):
        x = checks.as_input_array(x, self)
        self._ensure_built_for(x)
        if self.compiled and not self.metrics_list and self._metric_names:
            self._resolve_metrics()
        y = checks.as_target_array(y, self)
        checks.check_same_length(x, y, self)
        y = self.loss.prepare_targets(y, self.output_shape)
        return x, y

    def _sample_weights(self, y, sample_weight, class_weight, method):
        """Per-sample weights ``(N,)`` from ``sample_weight`` or ``class_weight`` (None: unweighted)."""
        if class_weight is not None:
            if sample_weight is not None:
                raise ValueError(f"{self.describe()}.{method}: you cannot pass both `class_weight` and "
                                 "`sample_weight`; got both")
            return checks.class_weight_to_sample_weight(class_weight, y, self, method)
        if sample_weight is None:
            return None
        return losses_mod.check_sample_weight(sample_weight, len(y), f"{self.describe()}.{method}")

    def _check_compiled(self, what):
        if not self.compiled:
            raise RuntimeError(
                f"{self.describe()}: call compile(optimizer=..., loss=..., metrics=...) before {what}()"
            )

    # -- fit ----------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
        """Train for ``epochs`` epochs; returns a :class:`~convolab.callbacks.History`.

        Keras's arguments and defaults (batch_size 32, shuffle each epoch). ``history.history``
        holds ``loss`` and each metric under the name given to ``compile`` (``acc`` or
        ``accuracy``), plus ``val_`` versions when there is validation data.

        ``class_weight`` (``{class index: weight}``, missing classes weigh 1) or ``sample_weight``
        (``(N,)``) weight each sample's loss: ``sum(w_i * loss_i) / N`` per batch, Keras 3's
        ``'sum_over_batch_size'``. ``validation_data`` may be ``(x, y)`` or ``(x, y, sample_weight)``.
        """
        self._check_compiled("fit")
        if steps_per_epoch is not None or validation_steps is not None:
            raise ValueError(f"{self.describe()}.fit: steps_per_epoch/validation_steps are not supported; pass arrays")
        batch_size = checks.check_batch_size(batch_size, self)
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"{self.describe()}.fit: `epochs` must be an int >= 0; got {epochs!r}")
        split = checks.check_validation_split(validation_split, self)
        x, y = self._prepare(x, y)
        sw = self._sample_weights(y, sample_weight, class_weight, "fit")
        swv = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError(f"{self.describe()}.fit: `validation_data` must be a tuple (x_val, y_val) or "
                                 f"(x_val, y_val, val_sample_weight); got {type(validation_data).__name__}"
                                 + (f" of length {len(validation_data)}" if isinstance(validation_data, (tuple, list)) else ""))
            xv, yv = self._prepare(*validation_data[:2])
            if len(validation_data) == 3 and validation_data[2] is not None:
                swv = self._sample_weights(yv, validation_data[2], None, "fit (validation_data)")
        elif split > 0:
            # Keras takes the *last* fraction, before any shuffling: split_at = floor(N * (1 - split)).
            split_at = int(math.floor(len(x) * (1.0 - split)))
            if split_at == 0 or split_at == len(x):
                raise ValueError(f"{self.describe()}.fit: validation_split={split} of {len(x)} samples leaves an empty set")
            x, xv = x[:split_at], x[split_at:]
            y, yv = y[:split_at], y[split_at:]
            if sw is not None:
                sw, swv = sw[:split_at], sw[split_at:]
        else:
            xv = yv = None
        verbose = 1 if verbose == "auto" else int(verbose)
        n = len(x)
        steps = -(-n // batch_size)
        cbs = list(callbacks or [])
        # As Keras: History and the progress bar come after the user's callbacks, so they see
        # what those add to the epoch logs (LearningRateScheduler's 'learning_rate').
        history = next((cb for cb in cbs if isinstance(cb, History)), None)
        if history is None:
            history = History()
            cbs.append(history)
        if verbose and not any(isinstance(cb, ProgbarLogger) for cb in cbs):
            cbs.append(ProgbarLogger(verbose))
        params = {"epochs": epochs, "steps": steps, "verbose": verbose, "batch_size": batch_size}
        cblist = CallbackList(cbs, self, params)
        self.history = history
        self.stop_training = False
        rng = get_generator()
        cblist.on_train_begin({})
        with self._threads(batch_size):
            self._fit_epochs(x, y, xv, yv, batch_size, steps, epochs, initial_epoch, shuffle,
                             validation_freq, validation_batch_size, cblist, rng, sw, swv)
        cblist.on_train_end(dict(self._last_logs))
        return history

    def _fit_epochs(self, x, y, xv, yv, batch_size, steps, epochs, initial_epoch, shuffle,
                    validation_freq, validation_batch_size, cblist, rng, sw=None, swv=None):
        n = len(x)
        for epoch in range(initial_epoch, epochs):
            cblist.on_epoch_begin(epoch, {})
            epoch_start_weights = self.get_weights()
            order = rng.permutation(n) if shuffle else None
            self.reset_metrics()  # Keras: the metrics describe this epoch alone
            for step in range(steps):
                idx = slice(step * batch_size, (step + 1) * batch_size) if order is None else \
                    order[step * batch_size : (step + 1) * batch_size]
                xb, yb, swb = x[idx], y[idx], None if sw is None else sw[idx]
                cblist.on_train_batch_begin(step)
                # running values over the epoch so far, as Keras's batch logs
                batch_logs = running = self._train_step(xb, yb, swb)
                if not math.isfinite(batch_logs["loss"]):
                    restored = not self._weights_finite()  # an earlier update diverged
                    if restored:
                        self.set_weights(epoch_start_weights)
                    warnings.warn(
                        f"{self.describe()}: the loss became {batch_logs['loss']} at epoch {epoch + 1}, "
                        f"batch {step + 1}; training stopped and that batch's update was not applied"
                        + ("; the weights had become inf/NaN and were restored to the start of this epoch"
                           if restored else "")
                        + ". Lower the learning rate, check the inputs for NaN/inf, or scale them to [0, 1].",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                    self.stop_training = True
                    cblist.on_train_batch_end(step, running)
                    break
                # A diverging update is caught within 16 steps: cheap, and the epoch's starting
                # weights are restored anyway.
                if (step % 16 == 15 or step == steps - 1) and not self._weights_finite():
                    self.set_weights(epoch_start_weights)
                    warnings.warn(
                        f"{self.describe()}: an update at epoch {epoch + 1}, batch {step + 1} made the weights "
                        "non-finite (inf/NaN); training stopped and the weights were restored to those at the "
                        "start of this epoch. Lower the learning rate.",
                        RuntimeWarning,
                        stacklevel=2,
                    )
                    self.stop_training = True
                cblist.on_train_batch_end(step, running)
                if self.stop_training:
                    break
            logs = self._compiled_metrics.result()
            if xv is not None and math.isfinite(logs["loss"]) and (epoch + 1) % validation_freq == 0:
                val = self._evaluate_arrays(xv, yv, validation_batch_size or batch_size, cblist, swv)
                logs.update({"val_" + k: v for k, v in val.items()})
            self._last_logs = logs
            cblist.on_epoch_end(epoch, logs)
            if self.stop_training:
                break

    # -- evaluate / predict --------------------------------------------------
    def _evaluate_arrays(self, x, y, batch_size, callbacks=None, sample_weight=None):
        """Loss and metrics over ``(x, y)`` in batches, calling ``callbacks``' test hooks (Keras's order)."""
        fused = engine.fused_softmax(self)
        self.reset_metrics()
        running_wanted = callbacks is not None and callbacks.wants("on_test_batch_end")
        self.stop_evaluating = False
        if callbacks is not None:
            callbacks.on_test_begin()
        with self._threads(batch_size):
            for step, start in enumerate(range(0, len(x), batch_size)):
                xb, yb = x[start : start + batch_size], y[start : start + batch_size]
                swb = None if sample_weight is None else sample_weight[start : start + batch_size]
                if callbacks is not None:
                    callbacks.on_test_batch_begin(step)
                out = self._forward_any(xb, logits=fused)
                loss = engine.loss_value_and_grad(self.loss, out, yb, fused, swb)[0]
                out = engine.metric_output(out, fused)
                self._compiled_metrics.update_state(loss, len(xb), yb, out, swb)
                if running_wanted:
                    callbacks.on_test_batch_end(step, self._compiled_metrics.result())
                if self.stop_evaluating:
                    break
        logs = self._compiled_metrics.result()
        if callbacks is not None:
            callbacks.on_test_end(logs)
        return logs

    def _forward_any(self, x, logits=False):
        """Inference on one batch: on shards when threads are active."""
        if self._runner is not None:
            return self._runner.forward(x, training=False, logits=logits)
        return engine.forward(self.layers, x, False, logits)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        """Loss and metrics on ``(x, y)``: a float, a list in ``metrics_names`` order, or a dict.

        Keras's arguments; ``callbacks`` get ``on_test_begin``, ``on_test_batch_begin``/``_end``
        (running means) and ``on_test_end`` (the result). ``sample_weight`` ``(N,)`` weights the
        loss (``sum(w_i * loss_i) / N``) and the ``weighted_metrics``, as in Keras 3; ``steps`` is
        not supported yet and raises ``ValueError`` when given.
        """
        self._check_compiled("evaluate")
        _refuse_unsupported(self, "evaluate", steps=steps)
        batch_size = checks.check_batch_size(batch_size, self)
        x, y = self._prepare(x, y)
        sw = self._sample_weights(y, sample_weight, None, "evaluate")
        cblist = self._callback_list(callbacks, verbose, len(x), batch_size)
        logs = self._evaluate_arrays(x, y, batch_size, cblist, sw)
        if verbose not in (0, False):
            print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()))
        if return_dict:
            return logs
        return logs["loss"] if len(logs) == 1 else [logs[k] for k in self.metrics_names]

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Model outputs for ``x``, computed in batches (default 32); shape ``(N, *output_shape[1:])``.

        Keras's arguments; ``callbacks`` get ``on_predict_begin``, ``on_predict_batch_begin``,
        ``on_predict_batch_end`` with ``logs={'outputs': batch_output}`` and ``on_predict_end``.
        ``steps`` is not supported yet and raises ``ValueError`` when given.
        """
        _refuse_unsupported(self, "predict", steps=steps)
        batch_size = checks.check_batch_size(batch_size, self)
        x = checks.as_input_array(x, self)
        self._ensure_built_for(x)
        cblist = self._callback_list(callbacks, verbose, len(x), batch_size)
        self.stop_predicting = False
        cblist.on_predict_begin()
        outs = []
        with self._threads(batch_size):
            for step, start in enumerate(range(0, len(x), batch_size)):
                cblist.on_predict_batch_begin(step)
                outs.append(self._forward_any(x[start : start + batch_size]))
                cblist.on_predict_batch_end(step, {"outputs": outs[-1]})
                if self.stop_predicting:
                    break
        cblist.on_predict_end()
        return np.concatenate(outs, axis=0)

    def _callback_list(self, callbacks, verbose, n, batch_size):
        """The CallbackList for one evaluate/predict pass (Keras's params: one epoch of ``steps``)."""
        verbose = 1 if verbose == "auto" else verbose
        params = {"epochs": 1, "steps": -(-n // batch_size), "verbose": verbose, "batch_size": batch_size}
        return CallbackList(list(callbacks or []), self, params)

    def predict_on_batch(self, x):
        return self.predict(x, batch_size=len(np.asarray(x)))

    def __call__(self, x, training=False):
        x = checks.as_input_array(x, self)
        self._ensure_built_for(x)
        return self._forward(x, training=training)

    # -- persistence (implemented in convolab.saving) -----------------------
    def save(self, filepath, overwrite=True, include_optimizer=True):
        """Save architecture, weights, compile settings (and optimiser state) to one file, atomically.

        ``overwrite=False`` refuses to replace an existing file (Keras's argument).
        """
        from ..saving import save_model

        _check_overwrite(filepath, overwrite, self)
        save_model(self, filepath, include_optimizer=include_optimizer)

    def save_weights(self, filepath, overwrite=True):
        """Save the weights alone (safetensors), atomically."""
        from ..saving import save_weights

        _check_overwrite(filepath, overwrite, self)
        save_weights(self, filepath)

    def load_weights(self, filepath):
        """Load weights saved by :meth:`save_weights` (or :meth:`save`) into this built model."""
        from ..saving import load_weights

        load_weights(self, filepath)

    def export(self, filepath, format="onnx"):
        """Export for inference; ``format='onnx'`` needs the ``onnx`` extra."""
        from ..saving import export_model

        export_model(self, filepath, format=format)

    def get_config(self):
        return {
            "name": self.name,
            "dtype": self.dtype,
            "input_shape": None if self._input_shape is None else list(self._input_shape[1:]),
            "layers": [{"class_name": type(l).__name__, "config": l.get_config()} for l in self.layers],
        }


def _refuse_unsupported(model, method, **args):
    """Keras arguments convolab cannot honour yet: an error, never silently ignored."""
    given = sorted(name for name, value in args.items() if value is not None)
    if given:
        raise ValueError(
            f"{model.describe()}.{method}: {', '.join(f'`{name}`' for name in given)} "
            f"{'is' if len(given) == 1 else 'are'} not supported by convolab yet (expected None); got "
            + ", ".join(f"{name}={args[name]!r}" for name in given)
        )


def _check_overwrite(filepath, overwrite, model):
    import os

    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"{model.describe()}: {filepath} exists and overwrite=False")
