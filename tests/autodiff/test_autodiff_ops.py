"""The tape and keras.ops: every op's backward against central differences in float64."""

import numpy as np
import pytest

from convolab import keras
from convolab.autodiff import GradientTape, Tensor, Variable
from convolab.autodiff import functions as ops

from support.gradcheck import numerical_gradient, rel_error

rng = np.random.default_rng(0)


def _positive(shape):
    return rng.random(shape) + 0.5


def _any(shape):
    return rng.standard_normal(shape)


# (name, function of the inputs, input makers): each input gets a gradient check
CASES = [
    ("add broadcast", lambda a, b: ops.add(a, b), [_any((3, 4)), _any((4,))]),
    ("subtract broadcast", lambda a, b: ops.subtract(a, b), [_any((2, 1, 3)), _any((4, 1))]),
    ("multiply", lambda a, b: ops.multiply(a, b), [_any((3, 4)), _any((3, 1))]),
    ("divide", lambda a, b: ops.divide(a, b), [_any((3, 4)), _positive((4,))]),
    ("power", lambda a, b: ops.power(a, b), [_positive((3, 2)), _any((3, 2))]),
    ("negative", lambda a: ops.negative(a), [_any((5,))]),
    ("square", lambda a: ops.square(a), [_any((2, 3))]),
    ("sqrt", lambda a: ops.sqrt(a), [_positive((2, 3))]),
    ("exp", lambda a: ops.exp(a), [_any((2, 3))]),
    ("log", lambda a: ops.log(a), [_positive((2, 3))]),
    ("abs", lambda a: ops.abs(a), [_any((2, 3))]),
    ("maximum", lambda a, b: ops.maximum(a, b), [_any((3, 3)), _any((3,))]),
    ("minimum", lambda a, b: ops.minimum(a, b), [_any((3, 3)), _any((3, 3))]),
    ("clip", lambda a: ops.clip(a, -0.5, 0.5), [_any((4, 4))]),
    ("where", lambda a, b: ops.where(np.arange(6).reshape(2, 3) % 2 == 0, a, b), [_any((2, 3)), _any((3,))]),
    ("matmul 2-D", lambda a, b: ops.matmul(a, b), [_any((3, 4)), _any((4, 2))]),
    ("matmul batched", lambda a, b: ops.matmul(a, b), [_any((2, 3, 4)), _any((4, 5))]),
    ("matmul vec", lambda a, b: ops.matmul(a, b), [_any((4,)), _any((4, 3))]),
    ("matmul mat-vec", lambda a, b: ops.matmul(a, b), [_any((3, 4)), _any((4,))]),
    ("sum axis", lambda a: ops.sum(a, axis=1), [_any((3, 4, 2))]),
    ("sum keepdims", lambda a: ops.sum(a, axis=(0, 2), keepdims=True), [_any((3, 4, 2))]),
    ("mean", lambda a: ops.mean(a, axis=-1), [_any((3, 4))]),
    ("mean all", lambda a: ops.mean(a), [_any((3, 4))]),
    ("max axis", lambda a: ops.max(a, axis=0), [_any((4, 3))]),
    ("min keepdims", lambda a: ops.min(a, axis=1, keepdims=True), [_any((4, 3))]),
    ("var", lambda a: ops.var(a, axis=0), [_any((5, 2))]),
    ("std", lambda a: ops.std(a, axis=1), [_any((2, 5))]),
    ("relu", lambda a: ops.relu(a), [_any((3, 4))]),
    ("sigmoid", lambda a: ops.sigmoid(a), [_any((3, 4)) * 5]),
    ("tanh", lambda a: ops.tanh(a), [_any((3, 4))]),
    ("softmax", lambda a: ops.softmax(a), [_any((3, 4))]),
    ("softmax axis 0", lambda a: ops.softmax(a, axis=0), [_any((3, 4))]),
    ("log_softmax", lambda a: ops.log_softmax(a), [_any((3, 4))]),
    ("softplus", lambda a: ops.softplus(a), [_any((3, 4))]),
    ("reshape", lambda a: ops.reshape(a, (6, -1)), [_any((3, 4))]),
    ("transpose", lambda a: ops.transpose(a, (2, 0, 1)), [_any((2, 3, 4))]),
    ("expand_dims", lambda a: ops.expand_dims(a, 1), [_any((2, 3))]),
    ("squeeze", lambda a: ops.squeeze(a, 1), [_any((2, 1, 3))]),
    ("concatenate", lambda a, b: ops.concatenate([a, b], axis=1), [_any((2, 3)), _any((2, 2))]),
    ("stack", lambda a, b: ops.stack([a, b], axis=1), [_any((2, 3)), _any((2, 3))]),
    ("getitem", lambda a: a[1:, ::2], [_any((3, 5))]),
    ("getitem repeated index", lambda a: ops.getitem(a, np.array([0, 2, 0])), [_any((3, 2))]),
    ("take axis", lambda a: ops.take(a, [2, 0, 2], axis=1), [_any((2, 3))]),
    ("cast", lambda a: ops.cast(a, "float64"), [_any((2, 2))]),
    ("categorical_crossentropy", lambda p: ops.categorical_crossentropy(np.eye(3)[[0, 2]], p), [_positive((2, 3))]),
    (
        "categorical_crossentropy logits",
        lambda z: ops.categorical_crossentropy(np.eye(3)[[0, 2]], z, from_logits=True),
        [_any((2, 3))],
    ),
    (
        "sparse_categorical_crossentropy",
        lambda z: ops.sparse_categorical_crossentropy(np.array([1, 0]), z, True),
        [_any((2, 3))],
    ),
    (
        "binary_crossentropy",
        lambda p: ops.binary_crossentropy(np.array([[1.0], [0.0]]), p),
        [rng.random((2, 1)) * 0.8 + 0.1],
    ),
    (
        "binary_crossentropy logits",
        lambda z: ops.binary_crossentropy(np.array([[1.0], [0.0]]), z, True),
        [_any((2, 1))],
    ),
    ("operators", lambda a, b: (a * 2 + 1) @ b.T - (-a) @ (b / 3).T + (a**2)[:, :1], [_any((2, 3)), _any((4, 3))]),
    ("reverse operators", lambda a: 1 / (2 + a * a) - 3 * a + np.ones(3) * a, [_any((2, 3))]),
]


@pytest.mark.parametrize("name,fn,inputs", CASES, ids=[c[0] for c in CASES])
def test_op_gradient_matches_central_differences(name, fn, inputs):
    inputs = [np.array(x, dtype=np.float64) for x in inputs]
    variables = [Variable(x.copy()) for x in inputs]
    with GradientTape() as tape:
        y = fn(*variables)
    assert isinstance(y, Tensor) and y.node is not None
    dy = rng.standard_normal(y.shape)
    grads = tape.gradient(y, variables, output_gradients=dy)
    for i, (x, g) in enumerate(zip(inputs, grads)):

        def f(v, i=i):
            args = [v if j == i else inputs[j] for j in range(len(inputs))]
            return np.asarray(fn(*args))

        num = numerical_gradient(f, x.copy(), dy)
        assert g is not None and g.shape == x.shape
        assert rel_error(g, num) < 1e-6, (name, i, rel_error(g, num))


def test_outside_a_tape_ops_return_plain_arrays():
    w = Variable(np.ones((2, 2)))
    y = ops.relu(np.array([[1.0, -1.0]]) @ w)
    assert type(y) is np.ndarray
    np.testing.assert_array_equal(y, [[0.0, 0.0]])


def test_branching_and_reuse_accumulate():
    """y = x*x + x*x*x uses x three times: dy/dx = 2x + 3x^2."""
    x = Variable(np.array([1.0, 2.0, -3.0]))
    with GradientTape() as tape:
        sq = x * x
        y = ops.sum(sq + sq * x)
    (g,) = tape.gradient(y, [x])
    np.testing.assert_allclose(g, 2 * x.value + 3 * x.value**2)


def test_unconnected_source_gives_none_and_tape_is_single_use():
    a, b = Variable(np.ones(2)), Variable(np.ones(2))
    with GradientTape() as tape:
        y = ops.sum(a * 3)
    assert tape.gradient(y, [a, b])[1] is None
    with pytest.raises(RuntimeError, match="once"):
        tape.gradient(y, [a])


def test_persistent_tape_and_watch():
    x = ops.convert_to_tensor(np.array([2.0]))
    with GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x**3
    np.testing.assert_allclose(tape.gradient(y, x), [12.0])
    np.testing.assert_allclose(tape.gradient(y, x), [12.0])


def test_numpy_functions_refuse_tensors_instead_of_dropping_the_gradient():
    with GradientTape():
        t = Variable(np.ones(3)) * 2
    with pytest.raises(TypeError):
        np.exp(t)


def test_keras_ops_namespace():
    assert keras.ops.relu is ops.relu and keras.ops.matmul is ops.matmul
    np.testing.assert_array_equal(keras.ops.one_hot(np.array([1, 0]), 3), [[0, 1, 0], [1, 0, 0]])
    assert keras.ops.argmax(np.array([[1, 3, 2]])) == [1]


def test_gradient_target_must_be_recorded():
    with GradientTape() as tape:
        y = np.ones(3)
    with pytest.raises(TypeError, match="computed under the tape"):
        tape.gradient(y, [Variable(np.ones(3))])
