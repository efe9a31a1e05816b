"""``keras.utils.PyDataset`` versions of the batch generator: batches addressed by index.

``keras.utils.PyDataset`` replaced ``keras.utils.Sequence``. Instead of a
generator that keeps its position in local variables, a PyDataset answers
``dataset[i]`` for any batch number ``i`` and says how many batches an epoch
has (``len(dataset)``). Because every batch is computed from its index alone,
Keras can hand different indices to several workers at once (threads, or
processes with ``use_multiprocessing=True``) and put the results back in
order: the thing a shared generator cannot do.

* :class:`CsrBatches` batches rows of an in-memory matrix (the tf-idf vectors)
  as dense arrays or as the backend's sparse tensor (``tf.SparseTensor`` on
  TensorFlow, a padded ``BCOO`` on JAX; chapter 12).
* :class:`TextBatches` vectorizes raw texts per batch, the CPU-heavy case in
  which extra workers can pay off.

Both reshuffle at the end of every epoch, with an order that is a pure function
of ``(seed, epoch)`` (:func:`utils.batching.epoch_order`, as the batch
generator's): the same seed gives the same batches in every run, and a run
resumed at epoch ``k`` can rebuild epoch ``k``'s order (:meth:`set_epoch`).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import scipy.sparse as sp

from utils.batching import check_batch_arguments, epoch_order, resolve_seed, steps_per_epoch, take_rows
from utils.sparse import SPARSE_BACKENDS, to_backend_sparse


def check_picklable(dataset: object) -> None:
    """Raise ``TypeError`` naming the attribute of ``dataset`` that cannot be pickled.

    With ``use_multiprocessing=True`` Keras sends the dataset to worker
    processes. On Linux (before Python 3.14) they are forked and nothing is
    pickled, so an unpicklable dataset seems to work, then fails on macOS and
    Windows (spawned workers) and on Linux from Python 3.14 (forkserver), where
    each worker receives a pickled copy. Checking up front makes the failure
    the same everywhere.
    """
    try:
        pickle.dumps(dataset)
    except Exception as error:  # pickle raises TypeError, AttributeError, PicklingError...
        culprits = []
        for name, value in vars(dataset).items():
            try:
                pickle.dumps(value)
            except Exception:
                culprits.append(f"{name} ({type(value).__name__})")
        where = ", ".join(culprits) or "the object itself"
        raise TypeError(
            f"{type(dataset).__name__} cannot be pickled, but use_multiprocessing=True sends it to worker "
            f"processes; unpicklable attribute(s): {where} ({error}). Keep only picklable state (arrays, "
            f"matrices, module-level functions), or use threads (use_multiprocessing=False)."
        ) from error


class ShuffledBatches(keras.utils.PyDataset):
    """Index bookkeeping shared by the PyDatasets here: length, epoch, seeded order."""

    def __init__(self, num_samples: int, batch_size: int, *, shuffle: bool, seed: int | None,
                 workers: int, use_multiprocessing: bool, max_queue_size: int) -> None:
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size)
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = resolve_seed(seed)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Use the sample order of ``epoch`` (for resuming a run at that epoch)."""
        self.epoch = epoch
        self.order = epoch_order(self.num_samples, self.seed, epoch, self.shuffle)

    def __len__(self) -> int:
        """Number of batches per epoch; the last one is partial when ``batch_size`` does not divide the samples."""
        return steps_per_epoch(self.num_samples, self.batch_size)

    def batch_index(self, index: int) -> np.ndarray:
        """Return the sample numbers of batch ``index`` of the current epoch.

        Raises:
            IndexError: ``index`` is not in ``0..len(self) - 1``.
        """
        if not 0 <= index < len(self):
            raise IndexError(f"batch index {index} out of range for {len(self)} batches")
        return self.order[index * self.batch_size:(index + 1) * self.batch_size]

    def on_epoch_end(self) -> None:
        """Move to the next epoch's order (Keras calls this after every epoch)."""
        self.set_epoch(self.epoch + 1)


class CsrBatches(ShuffledBatches):
    """Batches of rows of an in-memory matrix, one batch per index.

    Args:
        x: samples, scipy sparse (read as CSR) or a numpy array.
        y: labels, one per row of ``x``.
        batch_size: samples per batch, >= 1.
        sparse: return ``x`` batches as the backend's sparse tensor (for a
            model built with ``sparse_input=True``): ``tf.SparseTensor`` on
            TensorFlow, a ``BCOO`` padded to a few shapes on JAX
            (:func:`utils.sparse.to_jax_sparse`), instead of dense float32
            arrays. Not available with ``use_multiprocessing``: TensorFlow and
            JAX objects must not be created in forked worker processes.
        shuffle: reshuffle at the end of every epoch (seeded by ``seed`` and the epoch).
        seed: seed of the shuffling.
        workers, use_multiprocessing, max_queue_size: passed to ``keras.utils.PyDataset``.

    Raises:
        ValueError: bad ``batch_size``, empty input, lengths that differ, or
            ``sparse`` with ``use_multiprocessing``.
        TypeError: ``use_multiprocessing`` and the dataset cannot be pickled.
    """

    def __init__(self, x: sp.spmatrix | np.ndarray, y: np.ndarray, batch_size: int = 128, *,
                 sparse: bool = False, shuffle: bool = True, seed: int | None = 0, workers: int = 1,
                 use_multiprocessing: bool = False, max_queue_size: int = 10) -> None:
        x, y = check_batch_arguments(x, y, batch_size)
        if sparse and use_multiprocessing:
            raise ValueError("sparse=True needs threads: sparse tensors cannot be built in worker processes; "
                             "use use_multiprocessing=False, or sparse=False")
        if sparse and keras.backend.backend() not in SPARSE_BACKENDS:
            raise ValueError(f"sparse=True needs a backend with sparse inputs ({', '.join(SPARSE_BACKENDS)}); "
                             f"Keras runs on {keras.backend.backend()}: use sparse=False")
        super().__init__(len(y), batch_size, shuffle=shuffle, seed=seed, workers=workers,
                         use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size)
        self.x, self.y, self.sparse = x, y, sparse
        if use_multiprocessing:
            check_picklable(self)

    def __getitem__(self, index: int) -> tuple[Any, np.ndarray]:
        """Return batch ``index`` of the current epoch as ``(x_batch, y_batch)``."""
        rows = self.batch_index(index)
        x_batch = take_rows(self.x, rows, sparse=self.sparse)
        if self.sparse:
            # Keras turns scipy batches into tf.SparseTensor for generators, not for a PyDataset, where a
            # scipy batch fails with TypeError: the conversion belongs here.
            x_batch = to_backend_sparse(x_batch)
        return x_batch, self.y[rows]


class TextBatches(ShuffledBatches):
    """Batches of raw texts, vectorized when the batch is requested.

    Holding texts instead of vectors trades memory for CPU: every batch runs
    ``vectorize`` again, every epoch. This is the kind of per-batch work that
    extra workers can take off the training loop.

    Args:
        texts: the documents.
        y: labels, one per text.
        vectorize: function from a list of texts to a CSR matrix (for example
            a fitted ``NgramVectorizer().transform``); must be picklable (a
            bound method of a picklable object is) with ``use_multiprocessing``.
        batch_size, shuffle, seed, workers, use_multiprocessing, max_queue_size:
            as for :class:`CsrBatches`. Batches are dense float32 arrays.

    Raises:
        ValueError: bad ``batch_size``, empty input, or lengths that differ.
        TypeError: ``use_multiprocessing`` and the dataset cannot be pickled.
    """

    def __init__(self, texts: Sequence[str], y: np.ndarray, vectorize: Callable[[list[str]], sp.csr_matrix],
                 batch_size: int = 128, *, shuffle: bool = True, seed: int | None = 0, workers: int = 1,
                 use_multiprocessing: bool = False, max_queue_size: int = 10) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(texts) == 0:
            raise ValueError("cannot batch an empty input: no texts")
        if len(texts) != len(y):
            raise ValueError(f"length mismatch: {len(texts)} texts but {len(y)} labels")
        super().__init__(len(y), batch_size, shuffle=shuffle, seed=seed, workers=workers,
                         use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size)
        self.texts, self.y, self.vectorize = list(texts), np.asarray(y), vectorize
        if use_multiprocessing:
            check_picklable(self)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Return batch ``index`` of the current epoch, vectorized, as ``(x_batch, y_batch)``."""
        rows = self.batch_index(index)
        x_batch = self.vectorize([self.texts[i] for i in rows])
        return x_batch.toarray().astype(np.float32, copy=False), self.y[rows]
