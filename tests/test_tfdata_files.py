"""Tests of utils.disk_datasets: tf.data pipelines that re-read disk at every iteration.

Texts come from the committed excerpt of the real AG News test file; the sparse batches are synthetic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from utils import streaming, tfdata
from utils.readers import read_zhang_csv


def test_text_dataset_reads_the_stream_every_iteration(ag_news_sample: Path) -> None:
    texts, labels = read_zhang_csv(ag_news_sample, 4)
    dataset = tfdata.text_dataset(streaming.ZhangCsvRows(ag_news_sample, 4), chunk_size=64)
    for _ in range(2):
        got = [(t.numpy().decode("utf-8"), int(y)) for t, y in dataset]
        assert got == list(zip(texts, labels.tolist(), strict=True))


def test_sparse_batch_dataset_equals_the_csr_batches() -> None:
    rng = np.random.default_rng(0)  # synthetic
    batches = [(sp.random(5, 12, density=0.3, format="csr", dtype=np.float32, random_state=i),
                rng.integers(0, 2, 5)) for i in range(3)]
    for x, _ in batches:
        x.sort_indices()
    dataset = tfdata.sparse_batch_dataset(lambda: iter(batches), num_features=12, num_batches=3)
    assert dataset.cardinality().numpy() == 3
    for _ in range(2):  # re-iterable
        got = list(dataset)
        assert len(got) == 3
        for (x_tf, y_tf), (x, y) in zip(got, batches, strict=True):
            assert isinstance(x_tf, tf.SparseTensor)
            np.testing.assert_array_equal(tf.sparse.to_dense(x_tf).numpy(), x.toarray())
            np.testing.assert_array_equal(y_tf.numpy(), y)


def test_vectorized_text_batches(ag_news_sample: Path) -> None:
    stream = streaming.ZhangCsvRows(ag_news_sample, 4)
    dataset = tfdata.vectorized_text_batches(stream, tf.strings.length, batch_size=64, num_documents=300)
    assert dataset.cardinality().numpy() == 5
    lengths = np.concatenate([x.numpy() for x, _ in dataset])
    texts, _ = read_zhang_csv(ag_news_sample, 4)
    np.testing.assert_array_equal(lengths, [len(t.encode("utf-8")) for t in texts])
    shuffled = tfdata.vectorized_text_batches(stream, tf.strings.length, 64, 300, shuffle_buffer=300, seed=1)
    again = np.concatenate([x.numpy() for x, _ in shuffled])
    assert sorted(again.tolist()) == sorted(lengths.tolist()) and again.tolist() != lengths.tolist()
