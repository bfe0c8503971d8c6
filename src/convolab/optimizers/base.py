"""Optimizer base: owns per-variable state and updates variables in place."""

from __future__ import annotations

import math
import numbers
import weakref

import numpy as np

from ..backend import get_array_module, is_device_array
from ._checks import real
from .schedules import LearningRateSchedule, deserialize as deserialize_schedule, serialize as serialize_schedule


class Optimizer:
    """Base class. Subclasses implement ``build_state(param)`` and ``update(param, grad, state, tmp)``.

    ``apply(grads, trainable_variables)`` (Keras 3's order) updates each variable in place. State is kept per
    variable (the array object itself, as Keras keys its slots by variable), never by
    position: freezing a layer, recompiling with the same optimizer, or sharing it between
    two models changes which variables a step sees, and each keeps its own slots.
    A variable's state is created the first time a step updates it.

    One step, in Keras 3's order: the rate ``lr`` is read (a ``LearningRateSchedule`` is
    evaluated at ``iterations``, which is 0 for the first step); each gradient is clipped
    (``clipvalue``, then ``clipnorm``); with ``weight_decay`` set, each variable decays
    (``w -= w * weight_decay * lr``); the subclass's update runs; ``iterations += 1``.

    ``gradient_reducer`` (None here) is a function ``grads -> grads`` applied to the checked
    gradients before clipping: ``convolab.distributed.DistributedOptimizer`` sets it to an
    allreduce that averages them over every process.
    """

    gradient_reducer = None

    def __init__(self, learning_rate=0.001, name=None, weight_decay=None, clipnorm=None, clipvalue=None, **kwargs):
        if "lr" in kwargs:
            learning_rate = kwargs.pop("lr")
        for key in (
            "global_clipnorm",
            "use_ema",
            "ema_momentum",
            "ema_overwrite_frequency",
            "loss_scale_factor",
            "gradient_accumulation_steps",
            "jit_compile",
        ):
            val = kwargs.pop(key, None)
            if val not in (None, False, 0.99):
                raise ValueError(f"{type(self).__name__}: `{key}` is not supported by convolab; got {val!r}")
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) {', '.join(sorted(kwargs))}")
        self.name = name or type(self).__name__.lower()
        self.iterations = 0
        self.learning_rate = learning_rate
        self.weight_decay = (
            None if weight_decay is None else real(type(self).__name__, "weight_decay", weight_decay, lo=0)
        )
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        # id(variable) -> [weakref to the variable, its state dict, a scratch buffer]. The weak
        # reference tells a live variable from a dead one whose id was reused, and drops the
        # entry when the variable goes away.
        self._slots: dict = {}

    @property
    def learning_rate(self) -> float:
        """The rate the next step uses: the number set, or the schedule evaluated at ``iterations``."""
        lr = self._learning_rate
        if not isinstance(lr, LearningRateSchedule):
            return lr
        raw = lr(self.iterations)
        try:
            value = float(raw)
        except (TypeError, ValueError, OverflowError):
            value = math.nan
        if not math.isfinite(value) or value < 0:
            raise ValueError(
                f"{type(self).__name__}: the learning-rate schedule {type(lr).__name__} gave {raw!r} "
                f"at step {self.iterations}; expected a finite number >= 0"
            )
        return value

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, LearningRateSchedule):
            self._learning_rate = value
            return
        if isinstance(getattr(self, "_learning_rate", None), LearningRateSchedule):
            # Keras refuses too: a number here would silently end the schedule.
            raise TypeError(
                f"{type(self).__name__} was created with a learning-rate schedule "
                f"({type(self._learning_rate).__name__}), so its learning rate cannot be set to {value!r}; "
                "create the optimizer with a float learning_rate if it must be settable (e.g. for "
                "ReduceLROnPlateau), or assign another LearningRateSchedule"
            )
        try:
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and value > 0 and math.isfinite(value)
        except OverflowError:  # math.isfinite(10**400)
            ok = False
        if not ok:
            raise ValueError(
                f"{type(self).__name__}: `learning_rate` must be a positive number; got {value!r} "
                "(a keras.optimizers.schedules.LearningRateSchedule is accepted too)"
            )
        self._learning_rate = float(value)

    lr = learning_rate

    @property
    def learning_rate_schedule(self):
        """The :class:`LearningRateSchedule` given as ``learning_rate``, or None for a fixed rate."""
        lr = self._learning_rate
        return lr if isinstance(lr, LearningRateSchedule) else None

    def build_state(self, param) -> dict:
        return {}

    def update(self, param, grad, state, tmp) -> None:
        """Update ``param`` in place; ``tmp`` is a scratch array of the same shape.

        Read the rate as ``self.learning_rate``: within one step it is the same value for every
        variable (``iterations`` moves only after the last update).
        """
        raise NotImplementedError

    def begin_step(self) -> None:
        """Called once per step before any variable is updated (Nadam advances its momentum cache here)."""

    def get_global_state(self) -> dict:
        """State that belongs to the optimizer rather than to one variable: name -> float (``{}`` here)."""
        return {}

    def set_global_state(self, state) -> None:
        """Restore what :meth:`get_global_state` returned (the same names, finite numbers)."""
        self._checked_global_state(state)

    def _checked_global_state(self, state) -> dict:
        want = self.get_global_state()
        if not isinstance(state, dict) or set(state) != set(want):
            got = sorted(state) if isinstance(state, dict) else state
            raise ValueError(f"{type(self).__name__}: global state must have the keys {sorted(want)}; got {got!r}")
        return {key: real(type(self).__name__, key, value) for key, value in state.items()}

    def _slot(self, param):
        key = id(param)
        entry = self._slots.get(key)
        if entry is None or entry[0]() is not param:

            def forget(ref, key=key, slots=self._slots):
                if key in slots and slots[key][0] is ref:
                    del slots[key]

            entry = [weakref.ref(param, forget), self.build_state(param), None]
            self._slots[key] = entry
        return entry

    def get_state(self, param):
        """The state dict of variable ``param`` (a weight array or its ``Variable``; live arrays),
        or ``None`` before its first step."""
        param = _array_of(param)
        entry = self._slots.get(id(param))
        return entry[1] if entry is not None and entry[0]() is param else None

    def set_state(self, param, state) -> None:
        """Give variable ``param`` (an array or its ``Variable``) this state (slot name -> array of its shape)."""
        param = _array_of(param)
        want = self.build_state(param)
        if set(state) != set(want):
            raise ValueError(f"{type(self).__name__}: state slots must be {sorted(want)}; got {sorted(state)}")
        for key, arr in state.items():
            if np.shape(arr) != param.shape:
                raise ValueError(
                    f"{type(self).__name__}: state slot '{key}' must have the variable's shape "
                    f"{param.shape}; got {np.shape(arr)}"
                )
        entry = self._slot(param)
        xp = get_array_module(param)  # the state lives where its variable does
        entry[1] = {key: xp.array(arr, dtype=param.dtype) for key, arr in state.items()}

    @property
    def state(self) -> list:
        """Every live variable's state dict, in the order the variables were first updated."""
        return [entry[1] for entry in self._slots.values() if entry[0]() is not None]

    def apply(self, grads, trainable_variables=None) -> None:
        """One step in Keras 3's order: update every ``trainable_variables[i]`` in place from ``grads[i]``.

        Args:
            grads: one gradient per variable (arrays or tape tensors); a ``None`` gradient skips
                its variable with a warning, as Keras does.
            trainable_variables: the variables, as ``model.trainable_weights`` gives them
                (``Variable``) or their weight arrays. Keras's optimizer can fall back on the
                variables it was built with; convolab's is never built, so they are required.

        Raises:
            TypeError: the variables are missing, or the two lists come swapped (``Variable`` objects
                where the gradients go and arrays where the variables go: convolab's order before
                Keras's).
            ValueError: the lists differ in length, or a gradient's shape is not its variable's.
        """
        from ..autodiff.tensor import Variable, unwrap

        name = type(self).__name__
        if trainable_variables is None:
            raise TypeError(
                f"{name}.apply(grads, trainable_variables): the variables are required "
                "(e.g. optimizer.apply(grads, model.trainable_weights))"
            )
        grads, variables = list(grads), list(trainable_variables)
        if len(variables) != len(grads):
            raise ValueError(f"{name}: {len(variables)} variables but {len(grads)} gradients")
        if any(isinstance(g, Variable) for g in grads) and not any(isinstance(v, Variable) for v in variables):
            raise TypeError(
                f"{name}.apply(grads, trainable_variables) takes the gradients first, as Keras 3's does; "
                "got Variables as the gradients: call optimizer.apply(grads, model.trainable_weights)"
            )
        missing = [i for i, g in enumerate(grads) if g is None]
        if missing:
            import warnings

            warnings.warn(
                f"{name}: gradients do not exist for {len(missing)} of {len(grads)} variables; they are not updated",
                UserWarning,
                stacklevel=2,
            )
        pairs = [(unwrap(g), unwrap(v)) for g, v in zip(grads, variables) if g is not None]
        self._apply_arrays([v for _, v in pairs], [g for g, _ in pairs])

    def _apply_arrays(self, params, grads) -> None:
        """The step itself on raw arrays: update every ``params[i]`` in place from ``grads[i]``."""
        params, grads = list(params), list(grads)
        if len(params) != len(grads):
            raise ValueError(f"{type(self).__name__}: {len(params)} variables but {len(grads)} gradients")
        slots, entries = self._slots, []
        for p, g in zip(params, grads):  # check every pair before any variable moves
            if not (isinstance(p, np.ndarray) or is_device_array(p)) or getattr(g, "shape", None) != p.shape:
                raise ValueError(
                    f"{type(self).__name__}: a gradient of shape {np.shape(g)} for a variable of shape {np.shape(p)}"
                )
            entry = slots.get(id(p))
            entries.append(entry if entry is not None and entry[0]() is p else self._slot(p))
        if self.gradient_reducer is not None:
            grads = self.gradient_reducer(grads)
        lr = self.learning_rate  # the schedule is evaluated at the step about to run
        self.begin_step()
        for p, g, entry in zip(params, grads, entries):
            if entry[2] is None:
                entry[2] = get_array_module(p).empty_like(p)  # scratch, reused every step, never saved
            if self.clipvalue is not None:
                g = get_array_module(g).clip(g, -self.clipvalue, self.clipvalue)
            if self.clipnorm is not None:
                norm = float(get_array_module(g).sqrt((g * g).sum()))
                if norm > self.clipnorm:
                    g = g * (self.clipnorm / norm)
            if self.weight_decay is not None:
                self._decay(p, lr, entry[2])
            self.update(p, g, entry[1], entry[2])
        self.iterations += 1

    def _decay(self, param, lr, tmp):
        """Keras's decoupled weight decay, before the update: ``w -= w * weight_decay * lr``."""
        t = param.dtype.type
        get_array_module(param).multiply(param, t(self.weight_decay), out=tmp)
        tmp *= t(lr)
        param -= tmp

    def apply_gradients(self, grads_and_vars) -> None:
        """Keras's other spelling: ``(gradient, variable)`` pairs, as ``zip(grads, model.trainable_weights)``
        gives them; see :meth:`apply`."""
        pairs = list(grads_and_vars)
        self.apply([g for g, _ in pairs], [v for _, v in pairs])

    def get_config(self) -> dict:
        lr = self._learning_rate
        cfg = {
            "name": self.name,
            "learning_rate": serialize_schedule(lr) if isinstance(lr, LearningRateSchedule) else lr,
        }
        if self.weight_decay is not None:
            cfg["weight_decay"] = self.weight_decay
        if self.clipnorm is not None:
            cfg["clipnorm"] = self.clipnorm
        if self.clipvalue is not None:
            cfg["clipvalue"] = self.clipvalue
        return cfg

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = deserialize_schedule(config["learning_rate"])
        return cls(**config)


def _array_of(variable):
    """The weight array of a ``Variable`` (``model.weights`` gives Variables); an array unchanged.
    The state is keyed by the array, which the fused training paths update."""
    from ..autodiff.tensor import Variable

    return variable.value if isinstance(variable, Variable) else variable
