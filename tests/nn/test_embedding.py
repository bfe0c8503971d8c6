"""The embedding lookup and its gradient (``convolab.nn.embedding``): exact rows from hand-made
tables, Keras's cast of non-integer indices, a float64 central-difference check of the table's
gradient, repeated indices adding up, the sort-based accumulation against ``np.add.at``, and the
errors for indices outside the table."""

import numpy as np
import pytest

from convolab import _gpu
from convolab.nn.embedding import accumulate_rows, as_indices, embedding_backward, embedding_forward
from support.gradcheck import numerical_gradient, rel_error


def _table(rows=5, dim=3):
    """Row r is ``[10 r, 10 r + 1, 10 r + 2, ...]``: every value says which row it came from."""
    return (10.0 * np.arange(rows)[:, None] + np.arange(dim)[None, :]).astype(np.float32)


def test_rows_are_looked_up_exactly():
    w = _table()
    y, _ = embedding_forward(np.array([[0, 4, 2], [1, 1, 3]]), w)
    assert y.shape == (2, 3, 3) and y.dtype == np.float32
    np.testing.assert_array_equal(y[0], [[0, 1, 2], [40, 41, 42], [20, 21, 22]])
    np.testing.assert_array_equal(y[1], [[10, 11, 12], [10, 11, 12], [30, 31, 32]])


@pytest.mark.parametrize("shape", [(4,), (2, 3), (2, 3, 2), (1, 1, 1, 5)])
def test_any_index_shape_gets_a_trailing_vector_axis(shape):
    w = _table(7, 4)
    x = np.random.default_rng(0).integers(0, 7, shape)
    y, _ = embedding_forward(x, w)
    assert y.shape == shape + (4,)
    np.testing.assert_array_equal(y[..., 0], 10.0 * x)  # column 0 is ten times the row


def test_int32_and_int64_are_used_as_they_are_other_dtypes_cast_to_int32_as_keras_does():
    for dtype in (np.int32, np.int64):
        assert as_indices(np.array([1, 2], dtype), 5).dtype == dtype
    for x in (np.array([1.0, 2.0], np.float32), np.array([1, 2], np.uint8), np.array([True, False])):
        assert as_indices(x, 5).dtype == np.int32
    # floats are truncated towards zero, as Keras's ops.cast(x, "int32") truncates
    np.testing.assert_array_equal(as_indices(np.array([1.9, -0.5, 3.0, 4.99]), 5), [1, 0, 3, 4])
    y, _ = embedding_forward(np.array([[2.0, 4.0]], np.float32), _table())
    np.testing.assert_array_equal(y, embedding_forward(np.array([[2, 4]]), _table())[0])


@pytest.mark.parametrize(
    "x, got",
    [
        (np.array([[0, 5]]), "[0, 5]"),
        (np.array([[-1, 2]]), "[-1, 2]"),
        (np.array([[-3, 9]], np.int32), "[-3, 9]"),
        (np.array([[5.0, 1.0]]), "[1, 5]"),
        (np.array([[-1.0, 1.0]], np.float32), "[-1, 1]"),
        (np.array([[0.5, 7.25]]), "[0.5, 7.25]"),
    ],
)
def test_indices_outside_the_table_are_refused_with_their_range(x, got):
    with pytest.raises(ValueError, match=r"^Embedding 'emb': indices must lie in \[0, 4\] \(input_dim=5\); got") as e:
        embedding_forward(x, _table(), where="Embedding 'emb'")
    assert str(e.value).endswith(f"got indices in {got}")


def test_nan_is_refused():
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 4\].*nan"):
        embedding_forward(np.array([[np.nan, 1.0]]), _table())


def test_table_gradient_matches_central_differences_in_float64():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 4))
    x = rng.integers(0, 6, (3, 5))
    x[0, :3] = 2  # a repeated row
    dy = rng.normal(size=(3, 5, 4))
    y, cache = embedding_forward(x, w)
    dw = embedding_backward(dy, cache)
    num = numerical_gradient(lambda t: embedding_forward(x, t)[0], w.copy(), dy)
    assert dw.shape == w.shape and dw.dtype == np.float64
    assert rel_error(dw, num) < 1e-8


def test_repeated_indices_add_up_and_unread_rows_get_zero():
    x = np.array([[1, 1, 3], [1, 0, 3]])
    dy = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    dy_before = dy.copy()
    _, cache = embedding_forward(x, _table(5, 2))
    dw = embedding_backward(dy, cache)
    want = np.zeros((5, 2), np.float32)
    want[1] = dy[0, 0] + dy[0, 1] + dy[1, 0]
    want[3] = dy[0, 2] + dy[1, 2]
    want[0] = dy[1, 1]
    np.testing.assert_array_equal(dw, want)  # whole numbers: exact in any order
    np.testing.assert_array_equal(dy, dy_before)  # the caller's gradient is not written to


@pytest.mark.parametrize(
    "tokens, vocab, dim, seed",
    [(1, 1, 1, 0), (7, 3, 2, 1), (640, 10, 8, 2), (500, 2000, 16, 3), (4096, 50, 32, 4), (33, 33, 5, 5)],
)
def test_sort_based_accumulation_matches_add_at(tokens, vocab, dim, seed):
    rng = np.random.default_rng(seed)
    flat = rng.integers(0, vocab, tokens)
    dy2 = rng.normal(size=(tokens, dim)).astype(np.float32)
    want = np.zeros((vocab, dim), np.float32)
    np.add.at(want, flat, dy2)
    got = accumulate_rows(flat, dy2, np.zeros((vocab, dim), np.float32))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # float64 sums of float32 values: the order of the additions is all that differs
    got64 = accumulate_rows(flat, dy2.astype(np.float64), np.zeros((vocab, dim)))
    want64 = np.zeros((vocab, dim))
    np.add.at(want64, flat, dy2.astype(np.float64))
    np.testing.assert_allclose(got64, want64, rtol=1e-12, atol=1e-12)


def test_an_empty_batch_gives_a_zero_gradient():
    y, cache = embedding_forward(np.zeros((0, 4), np.int64), _table())
    assert y.shape == (0, 4, 3)
    dw = embedding_backward(np.zeros((0, 4, 3), np.float32), cache)
    np.testing.assert_array_equal(dw, np.zeros((5, 3)))


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu.usable(), reason='no CuPy or no CUDA device (pip install "convolab[gpu]")')
def test_on_a_real_gpu_the_lookup_and_cupyx_scatter_add_match_numpy():
    cp = _gpu.activate()
    rng = np.random.default_rng(0)
    w = rng.normal(size=(50, 8)).astype(np.float32)
    x = rng.integers(0, 50, (16, 40))
    dy = rng.normal(size=(16, 40, 8)).astype(np.float32)
    y, cache = embedding_forward(x, w)
    y_d, cache_d = embedding_forward(cp.asarray(x), cp.asarray(w))
    np.testing.assert_array_equal(cp.asnumpy(y_d), y)
    dw_d = embedding_backward(cp.asarray(dy), cache_d)
    assert isinstance(dw_d, cp.ndarray)
    np.testing.assert_allclose(cp.asnumpy(dw_d), embedding_backward(dy, cache), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"got indices in \[0, 50\]"):
        embedding_forward(cp.asarray(np.array([[0, 50]])), cp.asarray(w))
