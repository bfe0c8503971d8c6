"""Callback hooks, as Keras calls them during ``fit``, ``evaluate`` and ``predict``."""

from __future__ import annotations


class Callback:
    """Base class: override any ``on_*`` hook. ``self.model`` is set before training starts.

    Every hook gets a ``logs`` dict (possibly empty, never ``None``):

    - ``fit``: ``on_train_begin``, then per epoch ``on_epoch_begin``, per batch
      ``on_train_batch_begin``/``on_train_batch_end`` (running means of the loss and metrics),
      the validation pass (``on_test_begin``, ``on_test_batch_*``, ``on_test_end``), then
      ``on_epoch_end`` (the epoch's logs, ``val_`` keys included) and at last ``on_train_end``.
    - ``evaluate``: ``on_test_begin``, ``on_test_batch_begin``/``on_test_batch_end``, ``on_test_end``.
    - ``predict``: ``on_predict_begin``, ``on_predict_batch_begin``/``on_predict_batch_end``
      (``logs={'outputs': batch_output}``), ``on_predict_end``.

    ``on_batch_begin``/``on_batch_end`` are Keras's older names for the training batch hooks.
    """

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_batch_begin(self, batch, logs=None): ...
    def on_batch_end(self, batch, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)  # Keras's backwards-compatible alias

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None): ...
    def on_test_batch_end(self, batch, logs=None): ...
    def on_predict_batch_begin(self, batch, logs=None): ...
    def on_predict_batch_end(self, batch, logs=None): ...
    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_test_begin(self, logs=None): ...
    def on_test_end(self, logs=None): ...
    def on_predict_begin(self, logs=None): ...
    def on_predict_end(self, logs=None): ...


HOOKS = tuple(name for name in vars(Callback) if name.startswith("on_"))
_BATCH_HOOKS = tuple(name for name in HOOKS if "batch" in name)
# A callback that overrides only the alias still needs the training batch hook called.
_ALIASES = {"on_train_batch_begin": "on_batch_begin", "on_train_batch_end": "on_batch_end"}


def _overrides(cb, hook) -> bool:
    method = getattr(cb, hook)
    return getattr(method, "__func__", method) is not getattr(Callback, hook)


class CallbackList:
    """Fan each hook out to a list of callbacks, with a ``logs`` dict (``{}`` when none is given)."""

    def __init__(self, callbacks, model, params):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(
                    f"callbacks must be convolab.callbacks.Callback instances; got {cb!r} of type {type(cb).__name__}"
                )
            cb.set_model(model)
            cb.set_params(params)
        # Calling empty batch hooks 1,875 times an epoch costs time: for each batch hook keep only
        # the callbacks that override it (or its alias), on the class or (LambdaCallback) the instance.
        self._batch = {
            hook: [
                cb
                for cb in self.callbacks
                if _overrides(cb, hook) or (hook in _ALIASES and _overrides(cb, _ALIASES[hook]))
            ]
            for hook in _BATCH_HOOKS
        }

    def wants(self, hook) -> bool:
        """Whether any callback does something in batch hook ``hook`` (so its logs are worth computing)."""
        return bool(self._batch[hook])

    def _batch_hook(self, hook, batch, logs):
        cbs = self._batch[hook]
        if cbs:
            if logs is None:
                logs = {}
            for cb in cbs:
                getattr(cb, hook)(batch, logs=logs)

    def _hook(self, hook, logs, *args):
        if logs is None:
            logs = {}
        for cb in self.callbacks:
            getattr(cb, hook)(*args, logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._batch_hook("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._batch_hook("on_train_batch_end", batch, logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._batch_hook("on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        self._batch_hook("on_test_batch_end", batch, logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._batch_hook("on_predict_batch_begin", batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._batch_hook("on_predict_batch_end", batch, logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._hook("on_epoch_begin", logs, epoch)

    def on_epoch_end(self, epoch, logs=None):
        self._hook("on_epoch_end", logs, epoch)

    def on_train_begin(self, logs=None):
        self._hook("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._hook("on_train_end", logs)

    def on_test_begin(self, logs=None):
        self._hook("on_test_begin", logs)

    def on_test_end(self, logs=None):
        self._hook("on_test_end", logs)

    def on_predict_begin(self, logs=None):
        self._hook("on_predict_begin", logs)

    def on_predict_end(self, logs=None):
        self._hook("on_predict_end", logs)


class LambdaCallback(Callback):
    """Callbacks from plain functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``.

    Keras's arguments: ``on_epoch_begin``/``on_epoch_end`` take ``(epoch, logs)``,
    ``on_train_begin``/``on_train_end`` take ``(logs)``, ``on_train_batch_begin``/``on_train_batch_end``
    take ``(batch, logs)``; any other hook of :class:`Callback` is given by keyword with the same
    arguments as the hook, e.g. ``on_test_batch_end=lambda batch, logs: ...``.
    """

    def __init__(
        self,
        on_epoch_begin=None,
        on_epoch_end=None,
        on_train_begin=None,
        on_train_end=None,
        on_train_batch_begin=None,
        on_train_batch_end=None,
        **kwargs,
    ):
        super().__init__()
        unknown = sorted(k for k in kwargs if k not in HOOKS)
        if unknown:
            raise TypeError(
                f"LambdaCallback: unexpected keyword argument(s) {', '.join(unknown)}; "
                f"expected hooks among {', '.join(HOOKS)}"
            )
        hooks = dict(
            on_epoch_begin=on_epoch_begin,
            on_epoch_end=on_epoch_end,
            on_train_begin=on_train_begin,
            on_train_end=on_train_end,
            on_train_batch_begin=on_train_batch_begin,
            on_train_batch_end=on_train_batch_end,
            **kwargs,
        )
        for name, fn in hooks.items():
            if fn is None:
                continue
            if not callable(fn):
                raise TypeError(f"LambdaCallback: `{name}` must be callable; got {fn!r}")
            setattr(self, name, fn)
