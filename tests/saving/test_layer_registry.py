"""The layer registry: a layer class that declares ``config_schema`` and ``to_onnx`` in its own file
is loadable from a convolab file and exportable to ONNX, with no other change; one graph for ONNX
export (a Sequential exports as its functional graph, BatchNormalization folded where predict folds)."""

import numpy as np
import pytest

from convolab import initializers, keras
from convolab.layers import registry
from convolab.layers.base import Layer
from convolab.saving import ModelFileError, load_model, save_model, schema
from convolab.saving._common import LAYER_CLASSES
from convolab.utils.config_schema import number
from convolab.utils.layer_schema import layer_schema
from support.onnx_check import needs_onnx, run_onnx

L = keras.layers


def _channel_scale_class():
    """A new layer, written as the built-in ones are: everything a file and ONNX need is in the class."""

    class ChannelScale(Layer):
        """``x * gamma * factor``, ``gamma`` a learned scale per channel. Shape: output = input."""

        config_schema = layer_schema({"factor": number()})

        def __init__(self, factor=1.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = float(factor)

        def build(self, input_shape):
            super().build(input_shape)
            self._add_param("gamma", (input_shape[-1],), initializers.get("ones"))

        def call(self, x, training=False):
            return x * (self.params["gamma"] * self.factor)

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

        def to_onnx(self, g, t, folded=None):
            from convolab.saving.onnx_ops import to_nhwc

            to_nhwc(g, t)
            scale = g.const(self.name + "_scale", self.params["gamma"] * self.factor)
            t.name = g.op("Mul", [t.name, scale], self.name)

    return ChannelScale


@pytest.fixture
def channel_scale():
    cls = _channel_scale_class()
    yield cls
    registry.unregister(cls)


def _model(cls):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5, 5, 2)), L.Conv2D(3, 3), cls(factor=0.5, name="scale"), L.Flatten()])
    model.layers[1].params["gamma"][...] = [1.0, -2.0, 3.0]
    return model


def test_a_layer_declared_in_one_file_loads_and_exports(tmp_path, channel_scale):
    assert LAYER_CLASSES["ChannelScale"] is channel_scale and "ChannelScale" in schema.LAYER_SCHEMAS
    model = _model(channel_scale)
    x = np.random.default_rng(0).normal(size=(3, 5, 5, 2)).astype(np.float32)
    path = tmp_path / "m.convolab"
    save_model(model, path)
    again = load_model(path)
    assert type(again.layers[1]) is channel_scale and again.layers[1].factor == 0.5
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))

    needs_onnx()
    model.export(tmp_path / "m.onnx")
    np.testing.assert_allclose(run_onnx(tmp_path / "m.onnx", x), model.predict(x, verbose=0), rtol=0, atol=1e-5)

    # the same file, the class no longer declared: refused, as any class a file may not name
    registry.unregister(channel_scale)
    with pytest.raises(ModelFileError, match=r"layers\[1\]\.class_name: expected one of .*; got 'ChannelScale'"):
        load_model(path)


def test_a_layer_without_a_schema_is_neither_saved_nor_exported(tmp_path):
    class Doubled(Layer):
        def call(self, x, training=False):
            return 2 * x

    model = keras.Sequential([keras.Input((3,)), L.Dense(2), Doubled()])
    assert "Doubled" not in LAYER_CLASSES
    with pytest.raises(ValueError, match="cannot be saved"):
        save_model(model, tmp_path / "m.convolab")
    needs_onnx()
    with pytest.raises(ValueError, match="cannot be saved"):
        model.export(tmp_path / "m.onnx")


def test_a_registered_layer_without_an_emitter_is_refused(tmp_path):
    class Tripled(Layer):
        config_schema = layer_schema()

        def call(self, x, training=False):
            return 3 * x

    try:
        model = keras.Sequential([keras.Input((3,)), Tripled(name="t")])
        needs_onnx()
        with pytest.raises(ValueError, match=r"export_model: .*'t' has no ONNX translation"):
            model.export(tmp_path / "m.onnx")
    finally:
        registry.unregister(Tripled)


def test_a_subclass_does_not_inherit_a_built_in_emitter(tmp_path):
    """A user's Conv2D subclass may compute something else: it must write its own to_onnx."""

    class OddConv(L.Conv2D):
        config_schema = L.Conv2D.config_schema

        def convolution_op(self, inputs, kernel):
            return super().convolution_op(inputs, kernel) * 2

    try:
        model = keras.Sequential([keras.Input((4, 4, 1)), OddConv(2, 3, name="odd")])
        needs_onnx()
        with pytest.raises(ValueError, match=r"'odd' has no ONNX translation"):
            model.export(tmp_path / "m.onnx")
    finally:
        registry.unregister(OddConv)


def test_a_second_class_of_a_registered_name_is_refused():
    with pytest.raises(TypeError, match="'Dense', which convolab.layers.dense.Dense already has"):

        class Dense(Layer):
            config_schema = layer_schema()

    assert LAYER_CLASSES["Dense"] is L.Dense


def test_lambda_is_not_registered():
    assert "Lambda" not in LAYER_CLASSES and "Lambda" not in schema.LAYER_SCHEMAS
    assert set(schema.LAYER_SCHEMAS) == set(LAYER_CLASSES)


# -- one graph --------------------------------------------------------------------------------------
def _onnx_ops(model, tmp_path, x, atol=1e-5):
    needs_onnx()
    import onnx

    path = tmp_path / "m.onnx"
    model.export(path)
    np.testing.assert_allclose(run_onnx(path, x), model.predict(x, verbose=0), rtol=0, atol=atol)
    return [n.op_type for n in onnx.load(str(path)).graph.node]


def _randomise_statistics(model):
    rng = np.random.default_rng(7)
    for layer in model.layers:
        for sub in getattr(layer, "layers", [layer]):
            if isinstance(sub, L.BatchNormalization):
                c = sub.params["moving_mean"].shape
                sub.params["moving_mean"][...] = rng.normal(0, 0.5, c)
                sub.params["moving_variance"][...] = rng.uniform(0.5, 2, c)
                sub.params["gamma"][...] = rng.normal(1, 0.3, c)
                sub.params["beta"][...] = rng.normal(0, 0.3, c)


def test_functional_export_folds_batch_norm_where_predict_does(tmp_path):
    keras.utils.set_random_seed(0)
    inp = keras.Input((6, 6, 2))
    h = L.Conv2D(4, 3, padding="same")(inp)
    folded = L.BatchNormalization()(h)  # h feeds only this BatchNormalization: folded
    d = L.DepthwiseConv2D(3, padding="same")(folded)
    kept = L.BatchNormalization()(d)  # d is read twice: not folded
    mixed = L.Add()([kept, d])
    block = keras.Sequential([keras.Input((6, 6, 4)), L.Conv2D(4, 1), L.BatchNormalization()])  # folded inside
    out = L.Dense(3)(L.BatchNormalization()(L.Flatten()(block(mixed))))  # a BN after Flatten: kept
    model = keras.Model(inp, L.BatchNormalization()(out))  # after Dense, a model output: folded
    _randomise_statistics(model)
    x = np.random.default_rng(1).normal(size=(4, 6, 6, 2)).astype(np.float32)
    ops = _onnx_ops(model, tmp_path, x)
    assert ops.count("BatchNormalization") == 2


def test_sequential_exports_as_its_graph(tmp_path):
    needs_onnx()
    from convolab.saving.onnx_export import to_onnx

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            L.Conv2D(4, 3),
            L.BatchNormalization(),
            L.ReLU(),
            L.MaxPooling2D(),
            L.Flatten(),
            L.Dense(5),
            L.BatchNormalization(),
            L.Dense(2, activation="softmax"),
        ]
    )
    _randomise_statistics(model)
    proto = to_onnx(model)
    graph = keras.Model(inputs=model.inputs, outputs=model.outputs, name=model.name)
    assert proto.SerializeToString() == to_onnx(graph).SerializeToString()
    assert [i.name for i in proto.graph.input] == ["input"] and [o.name for o in proto.graph.output] == ["output"]
    x = np.random.default_rng(2).normal(size=(3, 8, 8, 1)).astype(np.float32)
    assert "BatchNormalization" not in _onnx_ops(model, tmp_path, x)


def test_sequential_dtype_check_is_kept(tmp_path):
    needs_onnx()
    model = keras.Sequential([keras.Input((4,)), L.Dense(3, dtype="float16")])
    with pytest.raises(ValueError, match="export_model: dtype float16 is not supported; float32 or float64 only"):
        model.export(tmp_path / "m.onnx")
