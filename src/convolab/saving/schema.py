"""A strict, explicit schema for the JSON inside a convolab file.

Known keys only, every type and range checked, layer/optimizer/loss classes from an
allow-list. Nothing from a file reaches a constructor before it has passed here; the
checks run on save too, so convolab never writes a file it would refuse to read.

Each checker is ``check(value, where) -> value`` and raises :class:`ModelFileError`
naming ``where`` (a path such as ``model.layers[2].config.units``).
"""

from __future__ import annotations

from .. import layers as _layers  # noqa: F401 (defining the built-in layers registers them)
from .. import metrics as metrics_mod
from ..layers import registry
from ..utils.config_schema import MAX_INT, boolean, integer, list_of, nullable, number, obj, string, tagged
from ..utils.config_schema import fail as _fail
from ..utils.config_schema import is_int as _is_int  # noqa: F401 (document.py reads it from here)
from ..utils.layer_schema import shape
from . import custom_compile

FORMAT_VERSION = 1
MAX_LAYERS = 10_000

# -- layers --------------------------------------------------------------------
#: ``class name -> config checker`` of every layer a file may name: each layer class declares its
#: own (``config_schema``, :mod:`convolab.layers.registry`); a live view, so a layer class defined
#: later is admitted once it exists. Lambda declares none (it holds Python code, which no file may carry).
LAYER_SCHEMAS = registry.SCHEMAS

model_schema = obj(
    {
        "class_name": string(32, {"Sequential"}),
        "config": obj(
            {
                "name": string(),
                "dtype": string(16, {"float32", "float64"}),
                "input_shape": shape,
                "layers": list_of(tagged(LAYER_SCHEMAS), 1, MAX_LAYERS),
            }
        ),
    }
)

# -- compile -------------------------------------------------------------------
_rate = number(0)
_steps = number(0, lo_open=True)
_MAX_PIECES = 10_000
SCHEDULE_SCHEMAS = {
    "ExponentialDecay": obj(
        {
            "initial_learning_rate": _rate,
            "decay_steps": _steps,
            "decay_rate": number(0, lo_open=True),
            "staircase": boolean,
            "name": string(),
        }
    ),
    "PiecewiseConstantDecay": obj(
        {
            "boundaries": list_of(integer(-(2**62), 2**62), 1, _MAX_PIECES),
            "values": list_of(_rate, 2, _MAX_PIECES + 1),
            "name": string(),
        }
    ),
    "CosineDecay": obj(
        {
            "initial_learning_rate": _rate,
            "decay_steps": _steps,
            "alpha": number(0, 1),
            "name": string(),
            "warmup_target": nullable(_rate),
            "warmup_steps": number(0),
        }
    ),
    "InverseTimeDecay": obj(
        {
            "initial_learning_rate": _rate,
            "decay_steps": _steps,
            "decay_rate": number(0),
            "staircase": boolean,
            "name": string(),
        }
    ),
}
_schedule = tagged(SCHEDULE_SCHEMAS)
_positive = number(0, lo_open=True)


def _learning_rate(v, where):
    """A positive number, or a built-in schedule ``{"class_name": ..., "config": ...}``."""
    if isinstance(v, dict):
        return _schedule(v, where)
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        _fail(where, "a positive number or a learning-rate schedule object", v)
    return _positive(v, where)


_OPT_COMMON = {"name": string(), "learning_rate": _learning_rate}
_OPT_OPTIONAL = {"clipnorm": number(0, lo_open=True), "clipvalue": number(0, lo_open=True), "weight_decay": number(0)}
_unit = number(0, 1)
_eps = number(0)
_beta = number(0, 1, hi_open=True)
_ADAM = {**_OPT_COMMON, "beta_1": _beta, "beta_2": _beta, "epsilon": _eps, "amsgrad": boolean}
OPTIMIZER_SCHEMAS = {
    "SGD": obj({**_OPT_COMMON, "momentum": _unit, "nesterov": boolean}, _OPT_OPTIONAL),
    "RMSprop": obj(
        {**_OPT_COMMON, "rho": _unit, "momentum": _unit, "epsilon": _eps, "centered": boolean}, _OPT_OPTIONAL
    ),
    "Adam": obj(_ADAM, _OPT_OPTIONAL),
    "AdamW": obj({**_ADAM, "weight_decay": number(0)}, _OPT_OPTIONAL),
    "Nadam": obj({**_OPT_COMMON, "beta_1": _beta, "beta_2": _beta, "epsilon": _eps}, _OPT_OPTIONAL),
    "Adagrad": obj({**_OPT_COMMON, "initial_accumulator_value": number(0), "epsilon": _eps}, _OPT_OPTIONAL),
    "Adadelta": obj({**_OPT_COMMON, "rho": _unit, "epsilon": _eps}, _OPT_OPTIONAL),
}
# reduction: written only when not Keras's default 'sum_over_batch_size' (issue 19)
_REDUCTION = {"reduction": string(32, {"sum", "mean", "mean_with_sample_weight", "none"})}
LOSS_SCHEMAS = {
    "SparseCategoricalCrossentropy": obj({"name": string(), "from_logits": boolean}, _REDUCTION),
    "CategoricalCrossentropy": obj({"name": string(), "from_logits": boolean}, _REDUCTION),
    "MeanSquaredError": obj({"name": string()}, _REDUCTION),
    "BinaryCrossentropy": obj({"name": string(), "from_logits": boolean, "label_smoothing": _unit}, _REDUCTION),
    "MeanAbsoluteError": obj({"name": string()}, _REDUCTION),
    "KLDivergence": obj({"name": string()}, _REDUCTION),
}

_METRIC_COMMON = {"name": string(), "dtype": string(16, {"float32", "float64"})}
METRIC_SCHEMAS = {
    "Accuracy": obj(_METRIC_COMMON),
    "BinaryAccuracy": obj({**_METRIC_COMMON, "threshold": number(0, 1, lo_open=True, hi_open=True)}),
    "CategoricalAccuracy": obj(_METRIC_COMMON),
    "SparseCategoricalAccuracy": obj(_METRIC_COMMON),
    "TopKCategoricalAccuracy": obj({**_METRIC_COMMON, "k": integer(1, MAX_INT)}),
    "SparseTopKCategoricalAccuracy": obj({**_METRIC_COMMON, "k": integer(1, MAX_INT)}),
    "MeanSquaredError": obj(_METRIC_COMMON),
    "MeanAbsoluteError": obj(_METRIC_COMMON),
    "MeanAbsolutePercentageError": obj(_METRIC_COMMON),
    "BinaryCrossentropy": obj({**_METRIC_COMMON, "from_logits": boolean, "label_smoothing": _unit}),
}
_metric_object = tagged(METRIC_SCHEMAS)
_builtin_loss = tagged(LOSS_SCHEMAS)


def _loss(v, where):
    """A built-in loss class (from the allow-list) and its config, or a user's loss function or
    Loss object by the name it was registered under (:mod:`.custom_compile`)."""
    if custom_compile.is_custom_entry(v):
        return custom_compile.check_entry(v, where)
    return _builtin_loss(v, where)


def _metric(v, where):
    """A metric name, a built-in metric class (from the allow-list) and its config, or a user's
    metric function or Metric object by its registered name (:mod:`.custom_compile`)."""
    if custom_compile.is_custom_entry(v):
        return custom_compile.check_entry(v, where)
    if isinstance(v, dict):
        return _metric_object(v, where)
    if not isinstance(v, str) or v.lower() not in metrics_mod.VALID:
        _fail(where, f"a metric name ({', '.join(metrics_mod.VALID)}) or a built-in metric object", v)
    return v


_metrics = list_of(_metric, 0, 64)
_one_output_compile = obj(
    # loss null: compiled without one (the model's own add_loss or compute_loss), as Keras 3 allows
    {"optimizer": tagged(OPTIMIZER_SCHEMAS), "loss": nullable(_loss), "metrics": _metrics},
    {"weighted_metrics": _metrics},
)
MAX_OUTPUTS = 64
_output_compile = obj(
    {
        "name": string(),
        "loss": nullable(_loss),
        "loss_weight": number(0),
        "metrics": _metrics,
        "weighted_metrics": _metrics,
    }
)


def _distinct_outputs(v, where):
    outputs = list_of(_output_compile, 2, MAX_OUTPUTS)(v, where)
    names = [o["name"] for o in outputs]
    if len(set(names)) != len(names):
        _fail(where, "distinct output names", names)
    if all(o["loss"] is None for o in outputs):
        _fail(where, "a loss for at least one output", names)
    return outputs


_several_outputs_compile = obj({"optimizer": tagged(OPTIMIZER_SCHEMAS), "outputs": _distinct_outputs})


def compile_schema(v, where):
    """One output: ``{optimizer, loss, metrics[, weighted_metrics]}``; several: ``{optimizer, outputs}``,
    each output ``{name, loss (null: not trained), loss_weight, metrics, weighted_metrics}``."""
    if isinstance(v, dict) and "outputs" in v:
        return _several_outputs_compile(v, where)
    return _one_output_compile(v, where)


# -- training state ------------------------------------------------------------
_u128 = integer(0, 2**128 - 1)
rng_state_schema = obj(
    {
        "bit_generator": string(16, {"PCG64"}),
        "state": obj({"state": _u128, "inc": _u128}),
        "has_uint32": integer(0, 1),
        "uinteger": integer(0, 2**32 - 1),
    }
)


def _layer_rngs(v, where):
    if not isinstance(v, dict):
        _fail(where, "an object of layer index -> generator state", v)
    out = {}
    for key, state in v.items():
        if not (key.isdigit() and len(key) <= 6 and str(int(key)) == key):
            _fail(where, "layer indices as keys", key)
        out[int(key)] = rng_state_schema(state, f"{where}.{key}")
    return out


training_state_schema = obj(
    {
        "iterations": integer(0, 2**62),
        "optimizer_slots": integer(0, MAX_INT),
        "rng": obj({"global": nullable(rng_state_schema), "layers": _layer_rngs}),
    },
    {
        # state of the optimizer as a whole (Optimizer.get_global_state), e.g. Nadam's momentum cache
        "optimizer_globals": obj({}, {"u_product": number(0, 1)}),
    },
)

# -- documents -----------------------------------------------------------------
_header = {"format_version": lambda v, w: v, "kind": string(16, {"model", "weights"}), "convolab_version": string(64)}
model_document = obj(
    {
        **_header,
        "model": model_schema,
        "compile": nullable(compile_schema),
        "training_state": nullable(training_state_schema),
    }
)
weights_document = obj({**_header, "layers": list_of(obj({"class_name": string(64), "name": string()}), 0, MAX_LAYERS)})
