"""Tests of the routes on Keras 3's other backends (chapter 12): padded JAX batches, Grain, bench/backends.py.

The routes run in fresh processes with ``KERAS_BACKEND=jax`` (this test process
has Keras on TensorFlow already), on a synthetic corpus that a linear model
separates: class 1 uses features 0-9, class 0 features 10-19, plus noise.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from bench import backends
from utils import REPO_ROOT
from utils.graindata import grain_batches
from utils.processes import run_fresh
from utils.sparse import to_jax_sparse

jax_sparse = pytest.importorskip("jax.experimental.sparse")


def separable_corpus(rows: int, seed: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """``rows`` sparse rows of 200 features whose class shows in which of two feature blocks is set."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    signal = sp.csr_matrix((np.ones(rows * 3), (np.repeat(np.arange(rows), 3),
                                                (rng.integers(0, 10, rows * 3) + 10 * np.repeat(1 - y, 3)))),
                           shape=(rows, 200))
    noise = sp.random(rows, 200, density=0.02, format="csr", random_state=seed) * 0.2
    x = (signal + noise).tocsr().astype(np.float32)
    x.sort_indices()
    return x, y.astype(np.float32)


@pytest.fixture(scope="module")
def corpus_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files ``bench.backends.run_route`` reads: a training and a test split of the separable corpus."""
    folder = tmp_path_factory.mktemp("backends")
    for split, rows, seed in (("train", 2000, 0), ("test", 500, 1)):
        x, y = separable_corpus(rows, seed)
        sp.save_npz(folder / f"x_{split}.npz", x, compressed=False)
        np.save(folder / f"y_{split}.npy", y)
    return folder


@pytest.mark.parametrize("nse_multiple", [1, 7, 4096])
def test_jax_sparse_backend_batch_pads_to_a_multiple_and_keeps_the_matrix(nse_multiple: int) -> None:
    x, _ = separable_corpus(64, 2)
    bcoo = to_jax_sparse(x, nse_multiple)
    assert bcoo.nse % nse_multiple == 0 and bcoo.nse >= x.nnz
    np.testing.assert_array_equal(np.asarray(bcoo.todense()), x.toarray())


def test_jax_sparse_backend_batches_of_different_fill_share_one_shape() -> None:
    x, _ = separable_corpus(512, 3)
    shapes = {to_jax_sparse(x[i:i + 128]).nse for i in range(0, 512, 128)}
    assert len({x[i:i + 128].nnz for i in range(0, 512, 128)}) > 1 and shapes == {4096}


def test_jax_sparse_backend_batch_rejects_a_bad_multiple() -> None:
    with pytest.raises(ValueError, match="nse_multiple must be >= 1"):
        to_jax_sparse(sp.eye(3, format="csr"), 0)


def test_tfdata_pad_for_jax_backend_keeps_the_batch() -> None:
    from keras.src.trainers.data_adapters.data_adapter_utils import tf_sparse_to_jax_sparse

    from utils import tfdata

    x, y = separable_corpus(300, 4)
    batches = list(tfdata.pad_for_jax(tfdata.gathered_dataset(x, y, 128, shuffle=False), nse_multiple=100))
    assert [int(b.values.shape[0]) % 100 for b, _ in batches] == [0, 0, 0]
    dense = np.concatenate([np.asarray(tf_sparse_to_jax_sparse(b).todense()) for b, _ in batches])
    np.testing.assert_array_equal(dense, x.toarray())


def test_grain_batches_cover_every_row_once_per_epoch_in_a_new_order() -> None:
    x, y = separable_corpus(300, 5)
    x_ids = sp.csr_matrix(np.arange(300, dtype=np.float32)[:, None] + 1)  # row r holds r + 1
    dataset = grain_batches(x_ids, y, 128, seed=3)
    epochs = [[dataset[epoch * 3 + i] for i in range(3)] for epoch in range(2)]
    for batches in epochs:
        assert [len(b[1]) for b in batches] == [128, 128, 44]
        rows = np.concatenate([b[0][:, 0] for b in batches]).astype(int) - 1
        assert sorted(rows) == list(range(300))
        np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y[rows])
    assert not np.array_equal(epochs[0][0][0], epochs[1][0][0])


def test_grain_batches_on_threads_give_the_same_batches() -> None:
    x, y = separable_corpus(300, 6)
    plain = grain_batches(x, y, 100, seed=1)
    threaded = iter(grain_batches(x, y, 100, seed=1, num_threads=2))
    for i in range(6):
        a, b = plain[i], next(threaded)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_grain_batches_reject_bad_arguments() -> None:
    x, y = separable_corpus(10, 7)
    with pytest.raises(ValueError, match="num_threads must be >= 0"):
        grain_batches(x, y, 4, num_threads=-1)
    with pytest.raises(ValueError, match="length mismatch"):
        grain_batches(x, y[:5], 4)


@pytest.mark.parametrize(("backend", "route"), [("jax", "generator"), ("jax", "pydataset_threads"), ("jax", "grain"),
                                               ("jax", "tfdata"), ("tensorflow", "grain")])
def test_route_trains_on_the_backend(corpus_folder: Path, backend: str, route: str) -> None:
    record = run_fresh(backends.run_route, backend, route, corpus_folder, 3, 32, 0, timeout=300)
    assert record["status"] == "ok", record["error"]
    assert record["backend"] == backend and record["batches"] == "sparse"
    assert record["test_accuracy"] > 0.9 and record["ms_per_step"] > 0 and record["peak_rss_mb"] > 50


def test_backend_neutral_utils_import_no_tensorflow_on_jax() -> None:
    code = ("import os, sys; os.environ['KERAS_BACKEND'] = 'jax'; "
            "import utils.batching, utils.callbacks, utils.graindata, utils.memory, utils.models, utils.pydataset; "
            "utils.models.build_mlp(20, 2, sparse_input=True); print('tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=REPO_ROOT, check=False)
    assert done.stdout.split()[-1:] == ["False"], done.stdout[-2000:] + done.stderr[-2000:]


def test_set_seed_on_jax_imports_no_tensorflow_and_repeats_the_weights() -> None:
    code = ("import os, sys; os.environ['KERAS_BACKEND'] = 'jax'; import numpy as np; "
            "from utils.runtime import set_seed; from utils.models import build_fasttext; "
            "weights = []\n"
            "for _ in range(2):\n"
            "    set_seed(7); weights.append(build_fasttext(20, 3).get_weights()[0])\n"
            "set_seed(8); other = build_fasttext(20, 3).get_weights()[0]\n"
            "print(np.array_equal(*weights), np.array_equal(weights[0], other), 'tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=REPO_ROOT, check=False)
    assert done.stdout.split()[-3:] == ["True", "False", "False"], done.stdout[-2000:] + done.stderr[-2000:]


def test_route_failure_on_a_backend_is_a_record_with_the_message(corpus_folder: Path) -> None:
    record = run_fresh(backends.run_route, "jax", "warp_drive", corpus_folder, 1, 32, 0, sparse=True, timeout=300)
    assert record["status"] == "failed" and record["error"] == "ValueError: unknown route 'warp_drive'; known: " + \
        ", ".join(backends.ROUTES)


@pytest.mark.skipif(backends.available("torch"), reason="PyTorch is installed here")
def test_backend_not_installed_is_skipped_with_how_to_add_it(corpus_folder: Path) -> None:
    records = backends.run_all(corpus_folder, ["torch"], ["generator"], 1, 32, 0, timeout=60)
    assert [r["status"] for r in records] == ["skipped"] * 3
    assert backends.TORCH_INSTALL in records[0]["error"]


def test_backend_bench_unknown_route_is_an_error_naming_it() -> None:
    done = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "backends.py"), "--routes", "grain,warp_drive"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and "warp_drive" in done.stderr


@pytest.mark.usefixtures("imdb_on_disk")
def test_backend_bench_quick_writes_the_records_chapter_12_reads(tmp_path: Path) -> None:
    out = tmp_path / "backends.json"
    done = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "backends.py"), "--quick", "--backends", "jax",
                           "--routes", "grain", "--json", str(out)], capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    bench = backends.load_results(out)
    (record,) = bench["records"]
    assert {"backend", "route", "ms_per_step", "peak_rss_mb", "test_accuracy", "status", "error"} <= set(record)
    assert (record["backend"], record["route"], record["status"]) == ("jax", "grain", "ok")
    assert 0 < backends.training_peak_mb(record) <= record["peak_rss_mb"]
    assert bench["jax_shapes"]["padded"]["distinct_shapes"] < bench["jax_shapes"]["as Keras converts scipy"][
        "distinct_shapes"]
    row = backends.format_table(bench["records"]).splitlines()[2].split()
    assert row[:3] == ["jax", "grain", "sparse"] and float(row[3]) == record["ms_per_step"]
