"""Callback hooks, as Keras calls them during ``fit``."""
from __future__ import annotations


class Callback:
    """Base class: override any ``on_*`` hook. ``self.model`` is set before training starts."""

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_train_batch_begin(self, batch, logs=None): ...
    def on_train_batch_end(self, batch, logs=None): ...
    def on_test_begin(self, logs=None): ...
    def on_test_end(self, logs=None): ...


def _overrides(cb, hook) -> bool:
    method = getattr(cb, hook)
    return getattr(method, "__func__", method) is not getattr(Callback, hook)


class CallbackList:
    """Fan each hook out to a list of callbacks."""

    def __init__(self, callbacks, model, params):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be convolab.callbacks.Callback instances; got {cb!r}")
            cb.set_model(model)
            cb.set_params(params)
        # Calling empty batch hooks 1,875 times an epoch costs time: keep only the callbacks
        # that override one, on the class or (LambdaCallback) on the instance.
        self._batch_hooks = [cb for cb in self.callbacks if _overrides(cb, "on_train_batch_end")
                             or _overrides(cb, "on_train_batch_begin")]

    def __getattr__(self, hook):
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def fan_out(*args, **kwargs):
            cbs = self._batch_hooks if "batch" in hook else self.callbacks
            for cb in cbs:
                getattr(cb, hook)(*args, **kwargs)

        return fan_out


class LambdaCallback(Callback):
    """Callbacks from plain functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None):
        super().__init__()
        for name, fn in list(locals().items()):
            if name.startswith("on_") and fn is not None:
                setattr(self, name, fn)
