"""Sparse matrices as Keras and TensorFlow want them: CSR with sorted column indices, and ``tf.SparseTensor``.

Keras 3 accepts a scipy sparse matrix as model input only if every row's
column indices are sorted (otherwise TensorFlow fails with ``indices[1] =
[0,6024] is out of order``), and a ``tf.SparseTensor`` needs its indices in
row-major order, which sorted CSR gives. :func:`sorted_csr` is the one place
the series makes such a matrix; :func:`to_tf_sparse` the one place it hands
one to TensorFlow.
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
