"""Keras 3's ``compile_config`` (inside a ``.keras`` file's ``config.json``) to convolab's compile settings and back.

Keras 3 (``Trainer.get_compile_config``) writes what ``compile`` was given, serialized::

    {"optimizer": {"module": "keras.optimizers", "class_name": "Adam", "config": {...}, "registered_name": null},
     "loss": <a name, a loss object, or per output: a dict by output name or a list>,
     "loss_weights": null | <a number, a dict or a list>,
     "metrics": null | [names or metric objects] | <per output: a dict or a list of lists>,
     "weighted_metrics": <as metrics>,
     "run_eagerly": false, "steps_per_execution": 1, "jit_compile": false}

and ``keras.saving.load_model(compile=True)`` calls ``model.compile(**deserialized)`` with it.

convolab's own settings (:func:`convolab.saving._common.compile_config`) are one loss and a metric
list, or ``outputs``: one ``{name, loss, loss_weight, metrics, weighted_metrics}`` per output. Reading
turns Keras's form into that one, which the strict schema then checks (classes from the allow-list,
every argument in range) before any object is made; a user's loss or metric (a function, or a class
outside Keras's modules) keeps Keras's own entry, looked up by name in the registry on load
(:mod:`.custom_compile`); Keras's arguments that mean nothing here are
accepted only with their neutral value (``clipnorm: null``, ``use_ema: false``, ``reduction:
"sum_over_batch_size"``...), anything else is refused by name.
"""

from __future__ import annotations

from . import custom_compile
from .container import short_repr
from .errors import ModelFileError

#: compile() arguments about how Keras runs, not what it computes: read and ignored
_EXECUTION_KEYS = {"run_eagerly", "steps_per_execution", "jit_compile", "auto_scale_loss"}
_KEYS = {"optimizer", "loss", "loss_weights", "metrics", "weighted_metrics"} | _EXECUTION_KEYS
#: optimizer arguments Keras writes, with the values that mean what convolab does
_OPTIMIZER_NEUTRAL = {
    "weight_decay": (None,),
    "clipnorm": (None,),
    "clipvalue": (None,),
    "global_clipnorm": (None,),
    "use_ema": (False,),
    "ema_overwrite_frequency": (None,),
    "loss_scale_factor": (None,),
    "gradient_accumulation_steps": (None,),
}
#: loss arguments Keras writes, with the values that mean what convolab does
_LOSS_NEUTRAL = {
    "reduction": ("sum_over_batch_size",),
    "ignore_class": (None,),
    "axis": (-1,),
    "dtype": (None, "float32"),
    "label_smoothing": (0,),
}


def _fail(where, expected, got):
    raise ModelFileError(f"{where}: expected {expected}; got {short_repr(got)}")


# -- convolab -> Keras ---------------------------------------------------------------
def _keras_object(module, entry):
    if custom_compile.is_custom_entry(entry):
        return dict(entry)  # a user's object: already as Keras writes it
    return {"module": module, "class_name": entry["class_name"], "config": entry["config"], "registered_name": None}


def _keras_optimizer(entry):
    config = dict(entry["config"])
    if isinstance(config["learning_rate"], dict):
        config["learning_rate"] = _keras_object("keras.optimizers.schedules", config["learning_rate"])
    return _keras_object("keras.optimizers", {"class_name": entry["class_name"], "config": config})


def _keras_metrics(entries):
    return [e if isinstance(e, str) else _keras_object("keras.metrics", e) for e in entries]


def _is_user_object(v):
    """Whether Keras wrote ``v`` for a user's object: a function (Keras writes its built-in functions
    so too: :func:`.custom_compile.resolve` knows their names), a class outside Keras's modules, or
    one registered under another name."""
    if not isinstance(v, dict):
        return False
    module, registered = v.get("module"), v.get("registered_name")
    keras_module = module is None or (isinstance(module, str) and (module == "keras" or module.startswith("keras.")))
    return (
        v.get("class_name") == custom_compile.FUNCTION
        or not keras_module
        or registered not in (None, v.get("class_name"))
    )


def _user_object(v, where):
    """A user's loss or metric as the schema takes it: Keras's four keys (``shared_object_id`` dropped)."""
    extra = sorted(set(v) - {"module", "class_name", "config", "registered_name", "shared_object_id"})
    if extra:
        _fail(where, "only the keys module, class_name, config, registered_name", extra)
    out = {k: v.get(k) for k in ("module", "class_name", "config", "registered_name")}
    if out["registered_name"] is None:
        out["registered_name"] = out["class_name"]  # an unregistered class: Keras's name for it
    return out


def to_keras(comp):
    """Keras's ``compile_config`` from convolab's checked compile settings ``comp``."""
    out = {"optimizer": _keras_optimizer(comp["optimizer"])}
    if "outputs" in comp:
        trained = [o for o in comp["outputs"] if o["loss"] is not None]
        weighted = {o["name"]: _keras_metrics(o["weighted_metrics"]) for o in comp["outputs"] if o["weighted_metrics"]}
        # an output without a loss is left out of the dicts: Keras then trains it on nothing either
        out.update(
            loss={o["name"]: _keras_object("keras.losses", o["loss"]) for o in trained},
            loss_weights={o["name"]: o["loss_weight"] for o in trained},
            metrics={o["name"]: _keras_metrics(o["metrics"]) for o in comp["outputs"] if o["metrics"]},
            weighted_metrics=weighted or None,
        )
    else:
        out.update(
            loss=None if comp["loss"] is None else _keras_object("keras.losses", comp["loss"]),
            loss_weights=None,
            metrics=_keras_metrics(comp["metrics"]),
            weighted_metrics=_keras_metrics(comp.get("weighted_metrics", [])) or None,
        )
    out.update(run_eagerly=False, steps_per_execution=1, jit_compile=False)
    return out


# -- Keras -> convolab ---------------------------------------------------------------
def _object(v, where, module):
    """``{class_name, config}`` of a Keras object of ``module`` (a built-in class, never a custom one)."""
    if not isinstance(v, dict) or not isinstance(v.get("class_name"), str) or not isinstance(v.get("config"), dict):
        _fail(where, f"a name or a {module} object {{module, class_name, config, registered_name}}", v)
    extra = sorted(set(v) - {"module", "class_name", "config", "registered_name", "shared_object_id"})
    if extra:
        _fail(where, "only the keys module, class_name, config, registered_name", extra)
    if v.get("module") not in (None, module, "keras"):
        _fail(f"{where}.module", f"{module!r}", v.get("module"))
    if v.get("registered_name") not in (None, v["class_name"]):
        _fail(f"{where}.registered_name", "null (a built-in class, never a custom one)", v["registered_name"])
    return v["class_name"], dict(v["config"])


def _drop_neutral(config, neutral, keep, where):
    """``config`` without the keys convolab does not take (``keep`` are those it does), each of which
    must hold its neutral value."""
    out = {}
    for key, value in config.items():
        if key in keep or key not in neutral:
            out[key] = value  # an unknown key is left for the schema to refuse by name
        elif not any(value == n and type(value) is not bool or value is n for n in neutral[key]):
            _fail(f"{where}.{key}", f"{' or '.join(map(repr, neutral[key]))} (convolab supports no other)", value)
    return out


def _optimizer(v, where):
    from ._common import OPTIMIZER_CLASSES

    if isinstance(v, str):
        from .. import optimizers

        try:
            return optimizers.serialize(optimizers.get(v))
        except ValueError:
            _fail(where, f"an optimizer name or object ({', '.join(OPTIMIZER_CLASSES)})", v)
    cls, config = _object(v, where, "keras.optimizers")
    if config.get("use_ema") is False:
        config.pop("ema_momentum", None)  # unused without use_ema
    keep = {"weight_decay"} if cls == "AdamW" else set()
    config = _drop_neutral(config, _OPTIMIZER_NEUTRAL, keep, f"{where}.config")
    if isinstance(config.get("learning_rate"), dict):
        name, sched = _object(config["learning_rate"], f"{where}.config.learning_rate", "keras.optimizers.schedules")
        config["learning_rate"] = {"class_name": name, "config": sched}
    return {"class_name": cls, "config": config}


def _loss(v, where):
    from .. import losses
    from ._common import LOSS_CLASSES

    if v is None:
        return None
    if _is_user_object(v):
        return _user_object(v, where)
    if isinstance(v, str):
        try:
            loss = losses.get(v)
        except ValueError:
            loss = None
        if loss is None or LOSS_CLASSES.get(type(loss).__name__) is not type(loss):
            _fail(where, f"a loss name convolab knows ({', '.join(sorted(losses._REGISTRY))}) or a loss object", v)
        return {"class_name": type(loss).__name__, "config": loss.get_config()}
    cls, config = _object(v, where, "keras.losses")
    known = LOSS_CLASSES.get(cls)
    keep = set(known().get_config()) if known is not None else set()
    return {"class_name": cls, "config": _drop_neutral(config, _LOSS_NEUTRAL, keep, f"{where}.config")}


def _metric(v, where):
    if isinstance(v, str):
        return v  # the schema checks the name
    if _is_user_object(v):
        return _user_object(v, where)
    cls, config = _object(v, where, "keras.metrics")
    return {"class_name": cls, "config": config}


def _metric_list(v, where):
    if v is None:
        return []
    if not isinstance(v, list):
        _fail(where, "a list of metrics", v)
    return [_metric(m, f"{where}[{i}]") for i, m in enumerate(v)]


def _per_output(v, names, where, nested):
    """``v`` as ``[(value, where)]`` in output order: from a dict by output name, a list with one entry
    per output (``nested``: the entries are lists themselves), or one value for every output."""
    if isinstance(v, dict) and not ("class_name" in v and "config" in v):
        unknown = sorted(set(v) - set(names))
        if unknown:
            _fail(where, f"output names among {names}", unknown)
        return [(v.get(n), f"{where}.{n}") for n in names]
    if isinstance(v, list) and len(v) == len(names) and (not nested or all(isinstance(e, list) for e in v)):
        return [(e, f"{where}[{i}]") for i, e in enumerate(v)]
    return [(v, where)] * len(names)


def from_keras(cfg, output_names, where):
    """convolab's compile settings (unchecked: the schema comes next) from Keras's ``compile_config``."""
    if not isinstance(cfg, dict):
        _fail(where, "an object", cfg)
    extra = sorted(set(cfg) - _KEYS)
    if extra:
        _fail(where, f"only the keys {sorted(_KEYS)}", extra)
    if cfg.get("loss") is None and len(output_names) != 1:
        _fail(f"{where}.loss", "a loss per output (convolab compiles a model of several outputs only with them)", None)
    out = {"optimizer": _optimizer(cfg.get("optimizer"), f"{where}.optimizer")}
    weights = cfg.get("loss_weights")
    if len(output_names) == 1:
        if weights not in (None, 1, 1.0, [1], [1.0]) and weights != {output_names[0]: 1.0}:
            _fail(f"{where}.loss_weights", "null or 1 for a model with one output", weights)
        loss = cfg.get("loss")
        if isinstance(loss, list) and len(loss) == 1 or isinstance(loss, dict) and set(loss) == set(output_names):
            loss = loss[0] if isinstance(loss, list) else loss[output_names[0]]
        # null: compiled without one (the model's own add_loss or compute_loss)
        out["loss"] = None if loss is None else _loss(loss, f"{where}.loss")
        for key in ("metrics", "weighted_metrics"):
            value = cfg.get(key)
            if isinstance(value, dict) and set(value) <= set(output_names):
                value = value.get(output_names[0])
            elif isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
                value = value[0]
            out[key] = _metric_list(value, f"{where}.{key}")
        return out
    losses = _per_output(cfg["loss"], output_names, f"{where}.loss", nested=False)
    weights = (
        _per_output(weights, output_names, f"{where}.loss_weights", nested=False)
        if weights is not None
        else [(1.0, None)] * len(output_names)
    )
    metrics = [
        _per_output(cfg.get(k), output_names, f"{where}.{k}", nested=True) for k in ("metrics", "weighted_metrics")
    ]
    out["outputs"] = [
        {
            "name": name,
            "loss": _loss(l, lw),
            "loss_weight": 1.0 if w is None else w,
            "metrics": _metric_list(m, mw),
            "weighted_metrics": _metric_list(wm, wmw),
        }
        for name, (l, lw), (w, _), (m, mw), (wm, wmw) in zip(output_names, losses, weights, *metrics)
    ]
    return out


__all__ = ["from_keras", "to_keras"]
