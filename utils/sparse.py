"""Sparse matrices as Keras and its backends want them: CSR with sorted column indices, ``tf.SparseTensor``, BCOO.

Keras 3 accepts a scipy sparse matrix as model input only if every row's
column indices are sorted (otherwise TensorFlow fails with ``indices[1] =
[0,6024] is out of order``), and a ``tf.SparseTensor`` needs its indices in
row-major order, which sorted CSR gives. :func:`sorted_csr` is the one place
the series makes such a matrix; :func:`to_tf_sparse` the one place it hands
one to TensorFlow. :func:`to_jax_sparse` hands one to JAX as a ``BCOO`` array
whose number of stored values is rounded up, so that JAX compiles its train step
for a few shapes instead of one per batch (chapter 12).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def sorted_csr(x: sp.spmatrix | sp.sparray, dtype: np.dtype | type = np.float32) -> sp.csr_matrix:
    """Return ``x`` as CSR of ``dtype`` with sorted column indices in every row.

    ``x`` itself is never modified: a CSR matrix of that dtype whose indices
    are sorted already is returned as it is, anything else as a sorted copy.
    """
    if sp.isspmatrix_csr(x) and x.dtype == dtype and x.has_sorted_indices:
        return x
    x = sp.csr_matrix(x, dtype=dtype, copy=True)
    x.sort_indices()
    return x


def to_tf_sparse(x: sp.spmatrix | sp.sparray):
    """Return ``x`` as a float32 ``tf.SparseTensor`` with indices in row-major order.

    TensorFlow is imported here, not at the top of the module, so that the
    scipy half of this module runs where TensorFlow is not installed or not
    wanted (a child process that only vectorizes).
    """
    import tensorflow as tf

    coo = sorted_csr(x).tocoo()
    indices = np.stack([coo.row, coo.col], axis=1).astype(np.int64)
    return tf.SparseTensor(indices, coo.data, coo.shape)


#: Keras backends whose models take sparse inputs (PyTorch's does not: ``keras.Input(sparse=True)`` raises there).
SPARSE_BACKENDS = ("tensorflow", "jax")

#: Default of :func:`to_jax_sparse`: stored values are padded to a multiple of this.
NSE_MULTIPLE = 4096


def to_jax_sparse(x: sp.spmatrix | sp.sparray, nse_multiple: int = NSE_MULTIPLE):
    """Return ``x`` as a float32 ``jax.experimental.sparse.BCOO`` padded to a multiple of ``nse_multiple`` values.

    JAX compiles a function once per input *shape*, and the shape of a BCOO
    array includes ``nse``, its number of stored values. Batches of tf-idf rows
    each hold a different number of non-zeros, so unpadded batches (what Keras
    makes of a scipy batch, ``BCOO.from_scipy_sparse``) make ``fit`` compile the
    train step again for nearly every batch. Padding ``nse`` up to a multiple of
    ``nse_multiple`` leaves a handful of shapes. Padded entries hold the value 0
    at the out-of-range index ``x.shape``, which BCOO operations ignore.

    JAX is imported here, so that the rest of the module never needs it.

    Raises:
        ValueError: ``nse_multiple`` < 1.
    """
    if nse_multiple < 1:
        raise ValueError(f"nse_multiple must be >= 1, got {nse_multiple}")
    import jax.experimental.sparse as jax_sparse

    coo = sorted_csr(x).tocoo()
    nse = max(nse_multiple, -(-coo.nnz // nse_multiple) * nse_multiple)
    indices = np.empty((nse, 2), dtype=np.int32)
    indices[:coo.nnz, 0], indices[:coo.nnz, 1] = coo.row, coo.col
    indices[coo.nnz:] = coo.shape  # out of range: ignored
    values = np.zeros(nse, dtype=np.float32)
    values[:coo.nnz] = coo.data
    return jax_sparse.BCOO((values, indices), shape=coo.shape)


def to_backend_sparse(x: sp.spmatrix | sp.sparray):
    """Return ``x`` as the sparse tensor of the running Keras backend: :func:`to_tf_sparse` or :func:`to_jax_sparse`.

    Raises:
        ValueError: the backend takes no sparse input (:data:`SPARSE_BACKENDS`).
    """
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        return to_tf_sparse(x)
    if backend == "jax":
        return to_jax_sparse(x)
    raise ValueError(f"Keras' {backend} backend takes no sparse input (only {', '.join(SPARSE_BACKENDS)}): "
                     "use dense batches")
