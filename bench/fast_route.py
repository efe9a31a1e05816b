"""The series' route made fast, one fix at a time, each measured against the one before (chapter 11).

Every *rung* is one contender of the race (``bench/peers.py``) with one change more than the rung before, run in
a fresh process on IMDB with the race's clock (:class:`bench.peers.Clock`: from the start of the work to a test
score, reading, features, imports and compilation included) and its memory (the process and its workers):

0. chapter 04's route: the guide's vocabulary tf-idf (``NgramVectorizer``), the MLP, ``tf.data``, TensorFlow;
1. hashed tf-idf n-grams (no vocabulary to fit) counted by one worker process, the same MLP, TensorFlow;
2. two worker processes;
3. binary tf (an n-gram counts once per document);
4. the JAX backend (sparse batches padded to one number of stored values);
5. fastText's architecture instead of the MLP (an averaged embedding, then softmax);
6. the last batch of an epoch (and of the test set) padded to the others' rows, with weight 0: one compilation
   of each step instead of two;
7. the model built, and its train and predict steps compiled, in a background thread while the main thread
   works on the features.

Then the *side* experiments, changes tried on the last rung or the one before that did not make it (the chapter
says why): JAX batches padded to multiples of 4,096 stored values (a shape, and a compilation, per multiple), batches of
512 rows, ``steps_per_execution=16``, XLA (``jit_compile=True``) on TensorFlow. And *tokenizers*: the 25,000
training reviews read and hashed into word 1–2-grams by scikit-learn's ``HashingVectorizer`` in this process,
by two worker processes, and by TensorFlow's string ops in a ``tf.data`` pipeline (two parallel calls), each in
a fresh process. And ``--steps``: chapter 04's benchmark of the generator and the gathered ``tf.data``
pipeline (with and without ``steps_per_execution=16``) on another corpus, to see whether what made the
gathered pipeline fast on IMDB holds for many short documents in many classes.

Usage::

    python bench/fast_route.py --repeats 2 --json results/11_fast_route.json
    python bench/fast_route.py --quick     # 2,000 reviews, one epoch less: a check (minutes)
    python bench/fast_route.py --steps dbpedia 94145 --json results/11_pipeline_steps_dbpedia.json
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import peers
from utils.processes import ChildProcessError, run_fresh, write_json
from utils.runtime import load_average, machine_summary, package_versions, quiet_tensorflow

#: ``(key, what changes, contender, options)``, each rung one change more than the one before.
RUNGS = (
    ("vocabulary", "chapter 04's route: vocabulary tf-idf, MLP, tf.data, TensorFlow", "ours_mlp_gathered",
     {"epochs": 3}),
    ("hashed", "hashed tf-idf counted by 1 worker process, MLP, TensorFlow", "ours_hashed_mlp",
     {"workers": 1, "binary": False, "backend": "tensorflow", "epochs": 3, "overlap": False}),
    ("two_workers", "+ 2 worker processes", "ours_hashed_mlp",
     {"workers": 2, "binary": False, "backend": "tensorflow", "epochs": 3, "overlap": False}),
    ("binary", "+ binary tf", "ours_hashed_mlp",
     {"workers": 2, "binary": True, "backend": "tensorflow", "epochs": 3, "overlap": False}),
    ("jax", "+ JAX backend, batches padded to one number of stored values", "ours_hashed_mlp",
     {"workers": 2, "binary": True, "backend": "jax", "epochs": 3, "pad_last": False, "overlap": False}),
    ("fasttext_model", "+ fastText's architecture instead of the MLP", "ours_hashed_fasttext",
     {"workers": 2, "binary": True, "backend": "jax", "epochs": 2, "pad_last": False, "overlap": False}),
    ("one_shape", "+ the last batch padded to the others' rows (one compilation per step)", "ours_hashed_fasttext",
     {"workers": 2, "binary": True, "backend": "jax", "epochs": 2, "pad_last": True, "overlap": False}),
    ("overlap", "+ the model built and both steps compiled in a background thread", "ours_hashed_fasttext",
     {"workers": 2, "binary": True, "backend": "jax", "epochs": 2, "pad_last": True, "overlap": True}),
)
#: ``(key, what changes, rung it changes, contender, options)``: tried, not kept.
SIDE = (
    ("nse_4096", "JAX batches padded to multiples of 4,096 values (many shapes)", "overlap",
     "ours_hashed_fasttext", {"backend": "jax", "epochs": 2, "nse_multiple": 4096}),
    ("batch_512", "batches of 512 rows (learning rate 4x)", "overlap", "ours_hashed_fasttext",
     {"backend": "jax", "epochs": 2, "batch_size": 512, "learning_rate": 2e-2}),
    ("spe_16", "steps_per_execution=16", "overlap", "ours_hashed_fasttext",
     {"backend": "jax", "epochs": 2, "steps_per_execution": 16}),
    ("xla_tensorflow", "jit_compile=True (XLA) on TensorFlow", "binary", "ours_hashed_mlp",
     {"backend": "tensorflow", "epochs": 3, "jit_compile": True}),
)
#: Tokenizers compared on the training reviews.
TOKENIZERS = ("sklearn_1_process", "sklearn_2_workers", "tensorflow_string_ops")
#: Chapter 04's pipelines whose time per step ``--steps`` measures on another corpus.
STEP_PIPELINES = ("generator_sparse", "tfdata_gather", "tfdata_gather_spe16")
#: Rows per batch of ``--steps`` (chapter 04's).
BATCH_SIZE = 128
#: Documents of a ``--quick`` run.
QUICK_LIMIT = 2000


def tokenize_seconds(tokenizer: str, limit: int | None, seed: int = 0) -> dict[str, Any]:
    """Read and hash IMDB's training reviews into word 1–2-gram ids with ``tokenizer``; return the seconds.

    Run it in a fresh process. ``import_seconds`` is the import of TensorFlow (0 for scikit-learn, which the
    process has loaded with :mod:`bench.peers`); ``seconds`` the reading and hashing.
    """
    from utils.hashed_tfidf import HashedTfidf, counting_pool, gather_counts, submit_counts

    train, _ = peers.imdb_streams(seed)
    if limit is not None:
        train = train.head(limit)
    features = HashedTfidf(2, binary=True)
    import_seconds = 0.0
    start = time.perf_counter()
    if tokenizer == "sklearn_1_process":
        texts, _ = peers.read_all(train)
        ngrams = int(features.counts(texts).nnz)
    elif tokenizer == "sklearn_2_workers":
        with counting_pool(2) as pool:
            parts = gather_counts(submit_counts(pool, features, train))
        ngrams = sum(int(counts.nnz) for counts, _ in parts)
    elif tokenizer == "tensorflow_string_ops":
        quiet_tensorflow()
        import tensorflow as tf

        import_seconds = time.perf_counter() - start
        start = time.perf_counter()

        def hashed_ngrams(path: tf.Tensor) -> tf.Tensor:
            """One review's distinct hashed word 1-2-grams, words as scikit-learn's token pattern finds them."""
            text = tf.strings.lower(tf.io.read_file(path))
            words = tf.strings.split(tf.strings.regex_replace(text, r"[^\w]+", " "))
            words = tf.boolean_mask(words, tf.strings.length(words, unit="UTF8_CHAR") >= 2)
            grams = tf.concat([words, tf.strings.ngrams(words, 2, separator=" ")], axis=0)
            return tf.unique(tf.strings.to_hash_bucket_fast(grams, features.hash_size)).y

        dataset = (tf.data.Dataset.from_tensor_slices(list(train.paths))
                   .map(hashed_ngrams, num_parallel_calls=2).ragged_batch(1000))
        ngrams = sum(int(batch.flat_values.shape[0]) for batch in dataset)
    else:
        raise ValueError(f"tokenizer must be one of {TOKENIZERS}, got {tokenizer!r}")
    seconds = time.perf_counter() - start
    return {"tokenizer": tokenizer, "documents": len(train), "import_seconds": round(import_seconds, 2),
            "seconds": round(seconds, 2), "documents_per_second": round(len(train) / seconds),
            "ngrams": ngrams}


def run_once(contender: str, options: dict[str, Any], limit: int | None, seed: int) -> peers.PeerResult | dict:
    """Run one contender in a fresh process (:func:`bench.peers.run_isolated`); return its result.

    A contender that fails (XLA refusing an op, say) returns ``{"error", "unsupported"}`` instead: the
    exception's line and the first line that says what was unsupported, if one does.
    """
    try:
        return peers.run_isolated(contender, seed=seed, limit=limit, **options)
    except ChildProcessError as error:
        lines = str(error).splitlines()
        raised = [line for line in lines if re.match(r"^[\w.]+(Error|Exception): ", line)]
        unsupported = [line.strip() for line in lines if "unsupported" in line]
        return {"error": raised[-1] if raised else lines[0],
                "unsupported": unsupported[0][:400] if unsupported else None}


def pipeline_steps(dataset: str, rows: int | None, epochs: int, seed: int = 0) -> dict[str, Any]:
    """Chapter 04's benchmark (``bench/pipelines.py``) of :data:`STEP_PIPELINES` on ``dataset``: ms per step.

    The first ``rows`` training documents (all if ``None``) and as many test documents at most are vectorized
    here with the guide's features; each pipeline then trains the guide's MLP (softmax for more than two
    classes) for ``epochs`` epochs in a fresh process (:func:`bench.pipelines.run_child`).
    """
    from bench import pipelines
    from utils.vectorize import vectorize_texts

    train, test = peers.race_streams(dataset, seed)
    if rows is not None:
        train, test = train.head(rows), test.head(rows)
    texts, labels = peers.read_all(train)
    test_texts, test_labels = peers.read_all(test)
    _, x_train, (x_test,), seconds = vectorize_texts(texts, labels, test_texts)
    with tempfile.TemporaryDirectory(prefix="steps-") as tmp:
        data = pipelines.save_features(Path(tmp), x_train, labels, x_test, test_labels)
        results = [run_fresh(pipelines.run_child, name, Path(tmp), epochs, BATCH_SIZE, seed)
                   for name in STEP_PIPELINES]
    return {"dataset": dataset, "data": {**data, "vectorize_seconds": round(seconds, 1),
                                         "stored_values_per_row": round(x_train.nnz / x_train.shape[0], 1)},
            "epochs": epochs, "results": results}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: every rung, every side experiment and every tokenizer, each in a fresh process, ``--repeats``
    times round-robin; each record holds its median run and every run's figures (:func:`bench.peers.race_record`)."""
    parser = argparse.ArgumentParser(description="The series' route made fast, one fix at a time (IMDB).")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_LIMIT:,} reviews, one epoch less (a check)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of every experiment, round-robin")
    parser.add_argument("--json", type=Path, help="write the results here (after every run)")
    parser.add_argument("--steps", nargs=2, metavar=("DATASET", "ROWS"),
                        help="instead: chapter 04's pipelines' ms per step on DATASET's first ROWS documents")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.steps:
        dataset, rows = args.steps[0], int(args.steps[1])
        if dataset != "imdb":
            peers.ensure_standin(dataset, args.seed)
        steps = pipeline_steps(dataset, rows, 2 if args.quick else 4, args.seed)
        for result in steps["results"]:
            print(f"{dataset}: {result['pipeline']:<22}{result['ms_per_step']:>8.2f} ms per step", flush=True)
        if args.json:
            write_json(args.json, {**steps, "machine": machine_summary(), "versions": package_versions()})
        return 0
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    limit = QUICK_LIMIT if args.quick else None
    load_at_start = load_average()

    def shortened(options: dict[str, Any]) -> dict[str, Any]:
        return {**options, "epochs": max(1, options["epochs"] - 1)} if args.quick else options

    rungs = {key: dict(options) for key, _, _, options in RUNGS}
    experiments = [("rungs", key, label, contender, shortened(options), None)
                   for key, label, contender, options in RUNGS]
    experiments += [("side", key, label, contender, shortened({**rungs[rung], **options}), rung)
                    for key, label, rung, contender, options in SIDE]
    runs: dict[str, list[peers.PeerResult]] = {}
    failures: dict[str, dict] = {}
    tokenizer_runs: dict[str, list[dict[str, Any]]] = {}

    def save() -> None:
        results: dict[str, Any] = {"rungs": [], "side": []}
        for section, key, label, contender, options, rung in experiments:
            if key not in runs and key not in failures:
                continue
            figures = failures.get(key) or peers.race_record(contender, runs[key])
            results[section].append({"key": key, "change": label, "contender": contender, "options": options,
                                     **({"rung": rung} if rung else {}), **figures})
        results["tokenizers"] = [{**sorted(records, key=lambda r: r["seconds"])[(len(records) - 1) // 2],
                                  "runs_seconds": [r["seconds"] for r in records]}
                                 for records in tokenizer_runs.values()]
        if args.json:
            write_json(args.json, {**results, "quick": args.quick, "seed": args.seed, "repeats": args.repeats,
                                   "machine": machine_summary(), "load_average_at_start": load_at_start,
                                   "target_accuracy": peers.TARGET_ACCURACY,
                                   "versions": package_versions(optional=("jax",))})

    for round_number in range(args.repeats):
        for _, key, _, contender, options, _ in experiments:
            if key in failures:  # a failure is the same every time
                continue
            result = run_once(contender, options, limit, args.seed)
            if isinstance(result, dict):
                failures[key] = result
                print(f"{key:<16} failed: {result['error']}", flush=True)
            else:
                runs.setdefault(key, []).append(result)
                report(round_number, key, result)
            save()
        for tokenizer in TOKENIZERS:
            record = run_fresh(tokenize_seconds, tokenizer, limit, args.seed, daemon=False)
            tokenizer_runs.setdefault(tokenizer, []).append(record)
            print(record, flush=True)
            save()
    return 0


def report(round_number: int, key: str, result: peers.PeerResult) -> None:
    """Print one run's line."""
    reached = peers.time_to_reach(result.trace)
    print(f"round {round_number + 1}, {key:<16} accuracy {result.test_accuracy:.4f} after {result.seconds:6.1f} s, "
          f"{peers.TARGET_ACCURACY} {'at ' + format(reached, '.1f') + ' s' if reached is not None else 'not reached'},"
          f" peak {result.peak_rss_mb:,.0f} MB", flush=True)


if __name__ == "__main__":
    sys.exit(main())
