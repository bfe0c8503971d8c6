"""One model, several threads: which of fit, evaluate and predict may run at the same time.

Several threads may call ``predict`` on one model at once (a server does): the weights are only
read, and each thread keeps its own shard runner (``Sequential._runners``). ``fit`` changes the
weights in place, one parameter after another, and ``evaluate`` accumulates into the model's one
set of metrics: beside either, a call on another thread would compute with half-updated weights
or mix two evaluations' sums. Those combinations raise ``RuntimeError`` at once, naming both
calls, instead of returning wrong numbers. A call made on the thread already running one (a
callback's ``predict`` inside ``fit``, the validation pass) is part of that run and always allowed.
"""

from __future__ import annotations

import contextlib
import threading

_lock = threading.Lock()

#: (this call, a call running on another thread) pairs that are safe together
_COMPATIBLE = {("predict", "predict"), ("predict", "evaluate"), ("evaluate", "predict")}


def _thread_name(ident) -> str:
    for t in threading.enumerate():
        if t.ident == ident:
            return repr(t.name)
    return f"id {ident}"


def _refusal(model, what, other, other_ident) -> RuntimeError:
    if "fit" in (what, other):
        why = (
            "fit changes the weights in place, step by step, so the other call would compute with weights "
            "from several steps at once"
        )
    else:
        why = "both accumulate into the model's one set of metrics"
    return RuntimeError(
        f"{model.describe()}.{what}() was called on thread {threading.current_thread().name!r} while "
        f"{other}() runs on thread {_thread_name(other_ident)}: {why}. Only predict() may run on several threads "
        f"at once; wait for {other}() to finish, or {what} on a second model given "
        "set_weights(model.get_weights())"
    )


@contextlib.contextmanager
def running(model, what):
    """Mark ``model`` as running ``what`` (``'fit'``, ``'evaluate'``, ``'predict'``) on this thread.

    Raises:
        RuntimeError: another thread runs a call that cannot share the model with this one.
    """
    me = threading.get_ident()
    with _lock:
        users = model.__dict__.setdefault("_thread_use", {})
        for ident, calls in users.items():
            clash = next((c for c in calls if ident != me and (what, c) not in _COMPATIBLE), None)
            if clash is not None:
                raise _refusal(model, what, clash, ident)
        users.setdefault(me, []).append(what)
    try:
        yield
    finally:
        with _lock:
            calls = users[me]
            calls.pop()
            if not calls:
                del users[me]
