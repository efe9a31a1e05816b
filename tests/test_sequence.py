"""Tests of utils.sequence: per-batch padding, length-bucketed batches from disk, the sepCNN.

Texts are the committed excerpt of the real AG News test file (300 rows); lengths in the padding-cost tests and
token ids in the model tests are synthetic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from utils import REPO_ROOT, models, sequence, streaming, tfdata
from utils.readers import read_zhang_csv


@pytest.fixture(scope="module")
def adapted(ag_news_sample: Path) -> sequence.keras.layers.TextVectorization:
    vectorizer = sequence.sequence_vectorizer(max_tokens=500)
    texts, _ = read_zhang_csv(ag_news_sample, 4)
    vectorizer.adapt(tf.data.Dataset.from_tensor_slices(texts).batch(64))
    return vectorizer


@pytest.fixture(scope="module")
def ag_news_sample() -> Path:  # module scope for the adapted fixture
    return REPO_ROOT / "data" / "samples" / "ag_news_test_head.csv"


def test_pad_batch_per_batch_and_fixed() -> None:
    tokens = tf.ragged.constant([[5, 6, 7, 8, 9], [3], [4, 4]], dtype=tf.int64)
    np.testing.assert_array_equal(sequence.pad_batch(tokens, 4).numpy(),
                                  [[5, 6, 7, 8], [3, 0, 0, 0], [4, 4, 0, 0]])
    np.testing.assert_array_equal(sequence.pad_batch(tokens, 10).numpy()[0], [5, 6, 7, 8, 9])
    assert sequence.pad_batch(tokens, 10, fixed=True).shape == (3, 10)
    short = tf.ragged.constant([[1], [2]], dtype=tf.int64)
    assert sequence.pad_batch(short, 10).shape == (2, sequence.MIN_SEQUENCE_LENGTH)


def test_vectorizer_reserves_padding_and_oov(adapted) -> None:
    vocabulary = adapted.get_vocabulary()
    assert vocabulary[:2] == ["", "[UNK]"] and len(vocabulary) == 500
    tokens = adapted(tf.constant(["the the", "zzzunseenzzz"]))
    assert isinstance(tokens, tf.RaggedTensor)
    assert tokens.row_lengths().numpy().tolist() == [2, 1] and tokens[1].numpy().tolist() == [1]


@pytest.mark.parametrize("window_batches", [1, 4])
def test_length_bucketed_batches_cover_every_document_once(ag_news_sample: Path, adapted,
                                                           window_batches: int) -> None:
    stream = streaming.ZhangCsvRows(ag_news_sample, 4)
    dataset = sequence.length_bucketed_batches(stream, adapted, batch_size=32, num_documents=300, max_length=40,
                                               window_batches=window_batches, shuffle_buffer=100, seed=1)
    batches = list(dataset)
    assert len(batches) == dataset.cardinality().numpy() == 10  # 300 documents: 9 full batches of 32, one of 12
    labels = np.concatenate([y.numpy() for _, y in batches])
    assert len(labels) == 300
    texts, expected_labels = read_zhang_csv(ag_news_sample, 4)
    assert np.bincount(labels).tolist() == np.bincount(expected_labels).tolist()
    expected_tokens = sorted(int(n) for n in np.minimum(adapted(texts).row_lengths().numpy(), 40))
    got_tokens = sorted(int(n) for x, _ in batches for n in (x.numpy() != 0).sum(axis=1))
    assert got_tokens == expected_tokens  # each document once, truncated, nothing lost to padding
    for x, _ in batches:  # padded to the batch's longest
        assert x.shape[1] == max((x.numpy() != 0).sum(axis=1).max(), sequence.MIN_SEQUENCE_LENGTH)


def test_bucketing_reduces_width(ag_news_sample: Path, adapted) -> None:
    stream = streaming.ZhangCsvRows(ag_news_sample, 4)

    def positions(window_batches: int) -> int:
        return sum(int(np.prod(x.shape)) for x, _ in sequence.length_bucketed_batches(
            stream, adapted, 16, 300, window_batches=window_batches, shuffle_buffer=300, seed=0))

    assert positions(8) < positions(1)


def test_padding_cost_counts_positions() -> None:
    lengths = [10] * 4 + [1000] * 4  # synthetic: four short, four long
    cost = sequence.padding_cost(lengths, batch_size=4, max_length=500, window_batches=2, seed=0)
    assert cost["tokens"] == 4 * 10 + 4 * 500
    assert cost["whole_corpus"] == 8 * 500
    assert cost["length_bucketed"] == 4 * 10 + 4 * 500  # sorted: one short batch, one long batch
    assert cost["length_bucketed"] <= cost["per_batch"] <= cost["whole_corpus"]


def test_sepcnn_accepts_any_length_and_classes() -> None:
    model = models.build_sepcnn(100, 2, embedding_dim=8, filters=4)
    for length in (3, 17, 60):
        assert model(np.ones((2, length), dtype=np.int64)).shape == (2, 1)
    assert model.loss == "binary_crossentropy"
    multi = models.build_sepcnn(100, 4, embedding_dim=8, filters=4)
    out = multi(np.ones((3, 9), dtype=np.int64)).numpy()
    assert out.shape == (3, 4) and np.allclose(out.sum(axis=1), 1, atol=1e-5)
    with pytest.raises(ValueError):
        models.build_sepcnn(100, 1)


def test_guide_initializers_make_the_output_constant() -> None:
    x = np.random.default_rng(0).integers(2, 1000, size=(32, 120))  # synthetic token ids
    spreads = {}
    for guide in (True, False):
        models.keras.utils.set_random_seed(0)
        model = models.build_sepcnn(1000, 2, guide_initializers=guide)
        spreads[guide] = float(np.std(model(x, training=False).numpy()))
    assert spreads[False] > 100 * spreads[True]


def test_depthwise_initializer_keeps_variance() -> None:
    weights = models.depthwise_initializer(3)((3, 200, 1)).numpy()
    assert np.abs(weights).max() <= 1.0
    assert weights.var() * 3 == pytest.approx(1.0, rel=0.1)


def test_text_pipeline_shared_with_chapter_05(ag_news_sample: Path, adapted) -> None:
    stream = streaming.ZhangCsvRows(ag_news_sample, 4)
    fixed = tfdata.vectorized_text_batches(
        stream, lambda texts: sequence.pad_batch(adapted(texts), 50, fixed=True), 64, 300)
    assert [x.shape for x, _ in fixed] == [(64, 50)] * 4 + [(44, 50)]
