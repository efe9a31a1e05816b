"""Tests of utils.datasets: registry, download + verification + safe extraction, cache reuse, loading.

Everything here is synthetic and offline: small tar.gz archives in Zhang's CSV layout are built in tmp_path
and served from a local HTTP server on 127.0.0.1 (ephemeral port) started by a fixture; a temporary
registry entry points at them with their real sha256.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import os
import re
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

import utils.datasets
from utils.datasets import (
    DATA_ENV_VAR,
    REPO_ROOT,
    DatasetError,
    DatasetSpec,
    data_home,
    extract_archive,
    fetch,
    get_spec,
    load,
    read_aclimdb_split,
    split_train_validation,
)

TOY = "toy"
TOY_FOLDER = "toy_csv"
TRAIN_PER_CLASS = 20
TEST_PER_CLASS = 3


@dataclass
class LocalServer:
    """A static file server on 127.0.0.1 serving ``root``; ``requests`` lists the paths asked for.

    Setting ``cut_at`` makes it announce a file's full length but send only its first ``cut_at`` bytes;
    then it closes the connection, or, if ``stall`` is set, first waits until ``release`` is set (or 30 s).
    """

    root: Path
    server: ThreadingHTTPServer
    thread: threading.Thread
    requests: list[str] = field(default_factory=list)
    stopped: bool = False
    cut_at: int | None = None
    stall: bool = False
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, name: str) -> str:
        """URL of the file ``name`` under ``root``."""
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/{name}"

    def stop(self) -> None:
        """Stop serving and free the port (idempotent)."""
        if not self.stopped:
            self.stopped = True
            self.release.set()
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(10)


@pytest.fixture
def http_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalServer]:
    """Serve ``tmp_path/www`` over HTTP on 127.0.0.1 with an ephemeral port, in a daemon thread."""
    for var in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    root = tmp_path / "www"
    root.mkdir()
    requests: list[str] = []
    local: LocalServer

    class QuietHandler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            requests.append(self.path)
            if local.cut_at is None:
                super().do_GET()
                return
            data = (root / self.path.lstrip("/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[:local.cut_at])
            self.wfile.flush()
            if local.stall:
                local.release.wait(30)
            self.close_connection = True

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="test-http",
                              daemon=True)
    thread.start()
    local = LocalServer(root, server, thread, requests)
    yield local
    local.stop()


def zhang_csv(rows: list[tuple[int, str, str]]) -> bytes:
    """Rows ``(class index, title, description)`` in Zhang's CSV format."""
    return "".join(f'"{c}","{t}","{d}"\n' for c, t, d in rows).encode("utf-8")


def toy_rows(per_class: int, split: str) -> list[tuple[int, str, str]]:
    """Two classes, ``per_class`` rows each, every text unique and naming its class."""
    return [(c, f"{split} title {c}-{i}", f"class{c} text number {i}") for i in range(per_class) for c in (1, 2)]


def make_tgz(path: Path, files: dict[str, bytes], extra: list[tarfile.TarInfo] | None = None) -> Path:
    """Write a tar.gz holding ``files`` (member name -> bytes), then the raw members ``extra``."""
    with tarfile.open(path, "w:gz") as tar:
        for folder in sorted({name.split("/")[0] for name in files if "/" in name}):
            info = tarfile.TarInfo(folder)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return path


def toy_files() -> dict[str, bytes]:
    """train.csv and test.csv of the toy dataset inside ``toy_csv/``."""
    return {
        f"{TOY_FOLDER}/train.csv": zhang_csv(toy_rows(TRAIN_PER_CLASS, "train")),
        f"{TOY_FOLDER}/test.csv": zhang_csv(toy_rows(TEST_PER_CLASS, "test")),
    }


def sha256_of(path: Path) -> str:
    """``sha256:<hex>`` of a file."""
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def register(monkeypatch: pytest.MonkeyPatch, url: str, known_hash: str, name: str = TOY) -> DatasetSpec:
    """Add a temporary two-class Zhang-CSV entry to the registry (undone after the test)."""
    # Built from a real entry with dataclasses.replace, so fields added to DatasetSpec later keep working.
    spec = dataclasses.replace(
        utils.datasets.REGISTRY["ag_news"], name=name, url=url, size=0, known_hash=known_hash, folder=TOY_FOLDER,
        layout="zhang_csv", class_names=("first", "second"), required=("train.csv", "test.csv"),
        citation="synthetic",
    )
    monkeypatch.setitem(utils.datasets.REGISTRY, name, spec)
    return spec


@pytest.fixture
def toy_spec(http_server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> DatasetSpec:
    """The toy archive, served locally and registered with its real sha256."""
    archive = make_tgz(http_server.root / "toy_csv.tgz", toy_files())
    return register(monkeypatch, http_server.url(archive.name), sha256_of(archive))


def files_under(folder: Path) -> list[str]:
    """Every path under ``folder`` (files and folders), relative, sorted; [] if it does not exist."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_fetch_downloads_verifies_and_extracts(toy_spec: DatasetSpec, http_server: LocalServer,
                                               tmp_path: Path) -> None:
    data_dir = tmp_path / "cache"
    folder = fetch(TOY, data_dir, progressbar=False)
    assert folder == data_dir / TOY / TOY_FOLDER
    assert (folder / "train.csv").read_bytes() == toy_files()[f"{TOY_FOLDER}/train.csv"]
    assert (folder / "test.csv").read_bytes() == toy_files()[f"{TOY_FOLDER}/test.csv"]
    assert http_server.requests == ["/toy_csv.tgz"]
    # The verified archive is kept next to the folder; no staging folder is left.
    assert sorted(p.name for p in (data_dir / TOY).iterdir()) == ["toy_csv", "toy_csv.tgz"]


def test_second_fetch_uses_cached_folder_without_download(toy_spec: DatasetSpec, http_server: LocalServer,
                                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = tmp_path / "cache"
    folder = fetch(TOY, data_dir, progressbar=False)
    (folder / "marker.txt").write_text("left by the test")
    (folder / "train.csv").write_bytes(b'"1","edited","in place"\n')
    http_server.stop()
    register(monkeypatch, "http://127.0.0.1:9/nowhere.tgz", toy_spec.known_hash)
    again = fetch(TOY, data_dir, progressbar=False)
    assert again == folder
    assert (again / "marker.txt").read_text() == "left by the test"
    assert (again / "train.csv").read_bytes() == b'"1","edited","in place"\n'
    assert http_server.requests == ["/toy_csv.tgz"]
    # Also with a bogus mirror given explicitly: the complete folder wins.
    assert fetch(TOY, data_dir, url="http://127.0.0.1:9/bogus.tgz", progressbar=False) == folder


def test_fetch_from_mirror_url_checks_registry_hash(toy_spec: DatasetSpec, http_server: LocalServer,
                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = make_tgz(http_server.root / "mirror.tgz", toy_files())
    register(monkeypatch, "http://127.0.0.1:9/canonical/toy_csv.tgz", sha256_of(mirror))
    folder = fetch(TOY, tmp_path / "cache", url=http_server.url("mirror.tgz"), progressbar=False)
    assert (folder / "test.csv").exists()
    assert http_server.requests == ["/mirror.tgz"]


def test_hash_mismatch_leaves_nothing_in_cache(http_server: LocalServer, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    archive = make_tgz(http_server.root / "toy_csv.tgz", toy_files())
    register(monkeypatch, http_server.url(archive.name), "sha256:" + "0" * 64)
    data_dir = tmp_path / "cache"
    with pytest.raises(DatasetError, match="verification"):
        fetch(TOY, data_dir, progressbar=False)
    assert http_server.requests == ["/toy_csv.tgz"]  # it was downloaded, then refused
    assert files_under(data_dir) in ([], [TOY])  # at most the empty cache folder: no archive, temp file, folder


@pytest.mark.parametrize("where", ["missing_file", "closed_port"])
def test_failed_download_leaves_nothing_in_cache(http_server: LocalServer, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    """A 404 or a refused connection raises DatasetError naming the URL and leaves no file behind."""
    url = http_server.url("missing.tgz") if where == "missing_file" else "http://127.0.0.1:9/toy_csv.tgz"
    register(monkeypatch, url, "sha256:" + "0" * 64)
    data_dir = tmp_path / "cache"
    with pytest.raises(DatasetError, match="failed") as info:
        fetch(TOY, data_dir, progressbar=False)
    assert url in str(info.value)
    assert files_under(data_dir) == []  # not even an empty folder for the dataset


def test_archive_without_required_file_is_refused_and_removed(http_server: LocalServer, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    files = toy_files()
    del files[f"{TOY_FOLDER}/test.csv"]
    archive = make_tgz(http_server.root / "toy_csv.tgz", files)
    register(monkeypatch, http_server.url(archive.name), sha256_of(archive))
    data_dir = tmp_path / "cache"
    with pytest.raises(DatasetError, match="test.csv"):
        fetch(TOY, data_dir, progressbar=False)
    assert files_under(data_dir) == [TOY]  # no folder, no staging folder, and the useless archive deleted


@pytest.mark.parametrize("member", ["../evil.txt", f"{TOY_FOLDER}/../../evil.txt"])
def test_member_escape_outside_destination_is_refused_and_nothing_left(tmp_path: Path, member: str) -> None:
    evil = tarfile.TarInfo(member)
    evil.size = 5
    archive = make_tgz(tmp_path / "evil.tgz", toy_files(), extra=[evil])  # good members first, then evil
    destination = tmp_path / "cache" / TOY
    with pytest.raises(DatasetError) as info:
        extract_archive(archive, destination, TOY_FOLDER)
    assert repr(member) in str(info.value) or member in str(info.value)
    assert list(tmp_path.rglob("evil.txt")) == []
    assert files_under(destination) == []  # no toy_csv/, no .extract-* staging folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "evil.tgz"]


def test_absolute_member_is_not_written_at_its_absolute_path(tmp_path: Path) -> None:
    """tarfile's "data" filter strips the leading "/" (it does not refuse): the member lands in staging."""
    target = tmp_path / "evil.txt"
    evil = tarfile.TarInfo(str(target))
    evil.size = 5
    archive = make_tgz(tmp_path / "abs.tgz", toy_files(), extra=[evil])
    destination = tmp_path / "cache" / TOY
    assert extract_archive(archive, destination, TOY_FOLDER) == destination / TOY_FOLDER
    assert not target.exists()
    assert list(tmp_path.rglob("evil.txt")) == []  # discarded with the staging folder
    assert sorted(p.name for p in destination.iterdir()) == [TOY_FOLDER]


def test_link_escape_outside_destination_is_refused(tmp_path: Path) -> None:
    link = tarfile.TarInfo(f"{TOY_FOLDER}/escape")
    link.type = tarfile.SYMTYPE
    link.linkname = "../../../outside"
    archive = make_tgz(tmp_path / "link.tgz", toy_files(), extra=[link])
    destination = tmp_path / "cache" / TOY
    with pytest.raises(DatasetError, match="escape"):
        extract_archive(archive, destination, TOY_FOLDER)
    assert files_under(destination) == []


def test_truncated_archive_extraction_raises_and_leaves_nothing(tmp_path: Path) -> None:
    files = toy_files()
    files[f"{TOY_FOLDER}/train.csv"] = os.urandom(64_000)  # incompressible, so half the .tgz is half the data
    whole = make_tgz(tmp_path / "whole.tgz", files).read_bytes()
    truncated = tmp_path / "truncated.tgz"
    truncated.write_bytes(whole[: len(whole) // 2])
    destination = tmp_path / "cache" / TOY
    with pytest.raises(DatasetError, match="truncated"):
        extract_archive(truncated, destination, TOY_FOLDER)
    assert files_under(destination) == []


def test_archive_without_expected_folder_is_refused(tmp_path: Path) -> None:
    archive = make_tgz(tmp_path / "other.tgz", {"other/train.csv": b'"1","a","b"\n'})
    destination = tmp_path / "cache"
    with pytest.raises(DatasetError, match=TOY_FOLDER):
        extract_archive(archive, destination, TOY_FOLDER)
    assert files_under(destination) == []


def test_incomplete_cache_folder_names_missing_part_and_is_left_alone(toy_spec: DatasetSpec, http_server: LocalServer,
                                                       tmp_path: Path) -> None:
    data_dir = tmp_path / "cache"
    folder = data_dir / TOY / TOY_FOLDER
    folder.mkdir(parents=True)
    (folder / "train.csv").write_bytes(b'"1","a","b"\n')
    with pytest.raises(DatasetError, match="incomplete") as info:
        fetch(TOY, data_dir, progressbar=False)
    assert "test.csv" in str(info.value)
    assert "train.csv" not in str(info.value).split("missing", 1)[1]
    assert http_server.requests == []
    assert files_under(folder) == ["train.csv"]


def test_load_returns_stratified_seeded_split(toy_spec: DatasetSpec, tmp_path: Path) -> None:
    data = load(TOY, tmp_path / "cache", validation_fraction=0.25, seed=1)
    n_train = 2 * TRAIN_PER_CLASS
    assert data.name == TOY and data.num_classes == 2 and data.class_names == ("first", "second")
    assert len(data.train_texts) + len(data.val_texts) == n_train
    assert len(data.val_texts) == round(0.25 * n_train)
    assert len(data.train_labels) == len(data.train_texts) and len(data.val_labels) == len(data.val_texts)
    assert np.bincount(data.val_labels).tolist() == [5, 5]  # stratified: both classes, in proportion
    assert np.bincount(data.train_labels).tolist() == [15, 15]
    expected = {f"train title {c}-{i}\nclass{c} text number {i}": c - 1 for c, _, _ in [(1, "", ""), (2, "", "")]
                for i in range(TRAIN_PER_CLASS)}
    got = dict(zip(data.train_texts + data.val_texts, np.concatenate([data.train_labels, data.val_labels]),
                   strict=True))
    assert got == expected  # every training row exactly once, with its own label
    assert len(data.test_texts) == 2 * TEST_PER_CLASS
    assert data.test_labels.tolist() == [0, 1] * TEST_PER_CLASS
    assert data.test_texts[0] == "test title 1-0\nclass1 text number 0"


def test_load_same_seed_same_split_different_seed_different(toy_spec: DatasetSpec, tmp_path: Path) -> None:
    a = load(TOY, tmp_path / "cache", validation_fraction=0.2, seed=5)
    b = load(TOY, tmp_path / "cache", validation_fraction=0.2, seed=5)
    c = load(TOY, tmp_path / "cache", validation_fraction=0.2, seed=6)
    assert a.val_texts == b.val_texts and a.train_texts == b.train_texts
    np.testing.assert_array_equal(a.val_labels, b.val_labels)
    assert set(a.val_texts) != set(c.val_texts)
    assert len(a.val_texts) == len(c.val_texts) == 8


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_split_train_validation_rejects_fraction_outside_0_1(fraction: float) -> None:
    with pytest.raises(ValueError, match="validation_fraction"):
        split_train_validation(["a", "b", "c", "d"], np.array([0, 1, 0, 1]), fraction)


def test_textclf_data_env_var_redirects_data_home(toy_spec: DatasetSpec, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    assert data_home() == REPO_ROOT / "data"
    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setenv(DATA_ENV_VAR, str(elsewhere))
    assert data_home() == elsewhere
    assert data_home(tmp_path / "explicit") == tmp_path / "explicit"  # an explicit folder wins
    assert fetch(TOY, progressbar=False) == elsewhere / TOY / TOY_FOLDER
    assert (elsewhere / TOY / TOY_FOLDER / "train.csv").is_file()


def test_get_spec_unknown_name_raises_key_error_listing_known_names() -> None:
    with pytest.raises(KeyError) as info:
        get_spec("no_such_dataset")
    message = str(info.value)
    assert "no_such_dataset" in message
    for name in ("imdb", "ag_news", "dbpedia", "yelp_polarity", "amazon_polarity"):
        assert name in message
    assert get_spec("ag_news") is utils.datasets.REGISTRY["ag_news"]


def test_registry_has_series_datasets_with_hashes_and_class_counts() -> None:
    expected = {"imdb": 2, "ag_news": 4, "dbpedia": 14, "yelp_polarity": 2, "amazon_polarity": 2}
    registry = utils.datasets.REGISTRY
    assert set(expected) <= set(registry)
    for name, num_classes in expected.items():
        spec = registry[name]
        assert spec.name == name
        assert re.fullmatch(r"sha256:[0-9a-f]{64}|md5:[0-9a-f]{32}", spec.known_hash), spec.known_hash
        assert len(spec.class_names) == num_classes
        assert len(set(spec.class_names)) == num_classes
        assert spec.layout in ("aclimdb", "zhang_csv")
        assert spec.url.startswith(("http://", "https://")) and spec.archive_name
        assert spec.size > 0 and spec.required
    assert registry["imdb"].layout == "aclimdb"
    assert registry["ag_news"].class_names == ("World", "Sports", "Business", "Sci/Tech")


def make_aclimdb(root: Path, split: str, files: dict[str, dict[str, str]]) -> None:
    """Write a synthetic ``root/split/{neg,pos}/<name>`` tree."""
    for sub, texts in files.items():
        folder = root / split / sub
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in texts.items():
            (folder / name).write_text(text, encoding="utf-8")


def test_read_aclimdb_split_labels_and_sorted_order(tmp_path: Path) -> None:
    """Synthetic aclImdb tree; files are written out of order, and 10_1 sorts before 2_3 (by name)."""
    root = tmp_path / "aclImdb"
    make_aclimdb(root, "train", {"pos": {"2_9.txt": "good", "10_7.txt": "great"},
                                 "neg": {"5_2.txt": "bad", "0_1.txt": "awful", "notes.md": "ignored"}})
    make_aclimdb(root, "test", {"neg": {"0_3.txt": "meh"}, "pos": {"1_8.txt": "fine"}})
    texts, labels = read_aclimdb_split(root, "train")
    assert texts == ["awful", "bad", "great", "good"]
    assert labels.tolist() == [0, 0, 1, 1]
    assert labels.dtype == np.int64
    texts, labels = read_aclimdb_split(root, "test")
    assert texts == ["meh", "fine"] and labels.tolist() == [0, 1]


def test_read_aclimdb_split_invalid_utf8_names_file(tmp_path: Path) -> None:
    root = tmp_path / "aclImdb"
    make_aclimdb(root, "train", {"neg": {"0_1.txt": "ok"}, "pos": {}})
    (root / "train" / "pos" / "3_9.txt").write_bytes(b"caf\xe9")
    with pytest.raises(DatasetError, match=r"3_9\.txt"):
        read_aclimdb_split(root, "train")


# --- Bad input through fetch: every failure leaves the cache as it was -----------------------------------------


def big_toy_files() -> dict[str, bytes]:
    """The toy files plus 200 kB of incompressible padding, so that a download takes many chunks."""
    return toy_files() | {f"{TOY_FOLDER}/padding.bin": os.urandom(200_000)}


def test_truncated_archive_download_leaves_nothing_in_cache(http_server: LocalServer, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A mirror holds a cut-short archive and the hash given is that file's: the download verifies, the
    extraction fails, and the archive is deleted with everything else."""
    whole = make_tgz(tmp_path / "whole.tgz", big_toy_files()).read_bytes()
    truncated = http_server.root / "toy_csv.tgz"
    truncated.write_bytes(whole[: len(whole) // 2])
    register(monkeypatch, http_server.url(truncated.name), sha256_of(truncated))
    data_dir = tmp_path / "cache"
    with pytest.raises(DatasetError, match="truncated"):
        fetch(TOY, data_dir, progressbar=False)
    assert files_under(data_dir) == [TOY]


def test_truncated_download_of_whole_archive_fails_hash_and_leaves_nothing(
        http_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry has the whole archive's hash; a cut-short copy on the server fails verification."""
    whole = make_tgz(tmp_path / "whole.tgz", big_toy_files())
    (http_server.root / "toy_csv.tgz").write_bytes(whole.read_bytes()[:50_000])
    register(monkeypatch, http_server.url("toy_csv.tgz"), sha256_of(whole))
    with pytest.raises(DatasetError, match="verification"):
        fetch(TOY, tmp_path / "cache", progressbar=False)
    assert files_under(tmp_path / "cache") == []


def test_member_escape_through_fetch_leaves_nothing_in_cache(http_server: LocalServer, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    evil = tarfile.TarInfo("../../evil.txt")
    evil.size = 5
    archive = make_tgz(http_server.root / "toy_csv.tgz", toy_files(), extra=[evil])
    register(monkeypatch, http_server.url(archive.name), sha256_of(archive))
    data_dir = tmp_path / "cache"
    with pytest.raises(DatasetError, match="outside") as info:
        fetch(TOY, data_dir, progressbar=False)
    assert "../../evil.txt" in str(info.value)
    assert files_under(data_dir) == [TOY]  # no archive, no folder, no staging folder
    assert list(tmp_path.rglob("evil.txt")) == []


def test_interrupted_download_connection_dropped_then_later_call_starts_clean(
        toy_spec: DatasetSpec, http_server: LocalServer, tmp_path: Path) -> None:
    """The server announces the whole archive, sends 100 bytes and hangs up."""
    data_dir = tmp_path / "cache"
    http_server.cut_at = 100
    with pytest.raises(DatasetError, match="failed") as info:
        fetch(TOY, data_dir, progressbar=False)
    assert toy_spec.url in str(info.value)
    assert files_under(data_dir) == []
    http_server.cut_at = None
    folder = fetch(TOY, data_dir, progressbar=False)
    assert (folder / "train.csv").read_bytes() == toy_files()[f"{TOY_FOLDER}/train.csv"]
    assert sorted(p.name for p in (data_dir / TOY).iterdir()) == ["toy_csv", "toy_csv.tgz"]


FETCH_IN_CHILD = """
import dataclasses, sys
import utils.datasets as d
url, known_hash, data_dir = sys.argv[1:]
d.REGISTRY["toy"] = dataclasses.replace(d.REGISTRY["ag_news"], name="toy", url=url, known_hash=known_hash,
                                        folder="toy_csv", required=("train.csv", "test.csv"))
d.fetch("toy", data_dir, progressbar=False)
"""


def test_interrupted_download_killed_process_then_later_call_starts_clean(
        http_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process is SIGKILLed mid-download (the server has sent half the archive and stalls): the partial file
    stays behind in its staging folder, and the next fetch removes it and downloads cleanly."""
    import signal
    import subprocess
    import sys
    import time

    archive = make_tgz(http_server.root / "toy_csv.tgz", big_toy_files())
    spec = register(monkeypatch, http_server.url(archive.name), sha256_of(archive))
    data_dir = tmp_path / "cache"
    http_server.cut_at, http_server.stall = archive.stat().st_size // 2, True
    child = subprocess.Popen([sys.executable, "-c", FETCH_IN_CHILD, spec.url, spec.known_hash, str(data_dir)],
                             cwd=REPO_ROOT)
    try:
        deadline = time.monotonic() + 60
        while not any(p.stat().st_size > 0 for p in (data_dir / TOY).glob(".download-*/*")):
            assert child.poll() is None, f"the child ended with status {child.returncode} before downloading"
            assert time.monotonic() < deadline, "the download never started"
            time.sleep(0.02)
    finally:
        child.send_signal(signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
    left = files_under(data_dir / TOY)
    assert len(left) == 2 and left[0].startswith(f".download-{child.pid}-")  # the staging folder and its tmp file
    assert 0 < (data_dir / TOY / left[1]).stat().st_size < archive.stat().st_size
    http_server.cut_at, http_server.stall = None, False
    http_server.release.set()
    folder = fetch(TOY, data_dir, progressbar=False)
    assert (folder / "test.csv").read_bytes() == toy_files()[f"{TOY_FOLDER}/test.csv"]
    assert sorted(p.name for p in (data_dir / TOY).iterdir()) == ["toy_csv", "toy_csv.tgz"]


def test_interrupted_copy_of_archive_in_cache_is_replaced_by_a_clean_download(
        toy_spec: DatasetSpec, http_server: LocalServer, tmp_path: Path) -> None:
    """An archive cut short in the cache (a copy interrupted by hand) fails its hash and is downloaded again."""
    cache = tmp_path / "cache" / TOY
    cache.mkdir(parents=True)
    whole = (http_server.root / "toy_csv.tgz").read_bytes()
    (cache / "toy_csv.tgz").write_bytes(whole[:100])
    folder = fetch(TOY, tmp_path / "cache", progressbar=False)
    assert (cache / "toy_csv.tgz").read_bytes() == whole
    assert http_server.requests == ["/toy_csv.tgz"]
    assert (folder / "train.csv").is_file()


def test_interrupted_extraction_staging_of_dead_process_removed_live_one_kept(tmp_path: Path) -> None:
    """Staging folders whose process is gone are debris; one whose process runs (this one) is work in progress."""
    import subprocess
    import sys

    dead_pid = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_pid.wait()
    cache = tmp_path / "cache"
    dead = [cache / f".extract-{dead_pid.pid}-abc", cache / f".download-{dead_pid.pid}-def"]
    alive = cache / f".extract-{os.getpid()}-ghi"
    unrelated = cache / "toy_csv.tgz"
    for folder in [*dead, alive]:
        (folder / "toy_csv").mkdir(parents=True)
        (folder / "toy_csv" / "half.csv").write_bytes(b'"1","a"')
    unrelated.write_bytes(b"kept")
    assert utils.datasets.remove_stale_staging(cache) == sorted(dead)
    assert sorted(p.name for p in cache.iterdir()) == sorted([alive.name, unrelated.name])
    assert utils.datasets.remove_stale_staging(tmp_path / "nowhere") == []


def test_load_malformed_csv_in_cache_names_file_and_line_and_changes_nothing(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch
                                                                             ) -> None:
    from utils.readers import CSVFormatError

    register(monkeypatch, "http://127.0.0.1:9/unused.tgz", "sha256:" + "0" * 64)
    folder = tmp_path / "cache" / TOY / TOY_FOLDER
    folder.mkdir(parents=True)
    (folder / "train.csv").write_bytes(b'"1","a","b"\n"2","c","d"\n"2"\n')
    (folder / "test.csv").write_bytes(zhang_csv(toy_rows(TEST_PER_CLASS, "test")))
    before = {name: (folder / name).read_bytes() for name in ("train.csv", "test.csv")}
    with pytest.raises(CSVFormatError, match=r"train\.csv, line 3"):
        load(TOY, tmp_path / "cache")
    assert files_under(tmp_path / "cache") == [TOY, f"{TOY}/{TOY_FOLDER}", f"{TOY}/{TOY_FOLDER}/test.csv",
                                               f"{TOY}/{TOY_FOLDER}/train.csv"]
    assert {name: (folder / name).read_bytes() for name in before} == before


def test_read_aclimdb_split_empty_class_folder_raises(tmp_path: Path) -> None:
    root = tmp_path / "aclImdb"
    make_aclimdb(root, "train", {"neg": {"0_1.txt": "bad"}, "pos": {}})
    with pytest.raises(DatasetError, match=r"train/pos: empty"):
        read_aclimdb_split(root, "train")


def test_split_train_validation_texts_labels_length_mismatch() -> None:
    with pytest.raises(ValueError, match="length mismatch, 4 texts but 3 labels"):
        split_train_validation(["a", "b", "c", "d"], np.array([0, 1, 0]), 0.5)


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_text_dataset_texts_labels_length_mismatch_names_split(split: str) -> None:
    parts = {f"{s}_texts": ["a", "b"] for s in ("train", "val", "test")}
    parts |= {f"{s}_labels": np.array([0, 1]) for s in ("train", "val", "test")}
    parts[f"{split}_labels"] = np.array([0, 1, 1])
    with pytest.raises(ValueError, match=f"toy {split} split: length mismatch, 2 texts but 3 labels"):
        utils.datasets.TextDataset(name="toy", class_names=("neg", "pos"), **parts)


@pytest.mark.parametrize(("labels", "bad"), [([0, 2], "class index 2 at position 1"),
                                             ([-1, 0], "class index -1 at position 0")])
def test_text_dataset_class_index_out_of_range_names_split(labels: list[int], bad: str) -> None:
    parts = {f"{s}_texts": ["a", "b"] for s in ("train", "val", "test")}
    parts |= {f"{s}_labels": np.array([0, 1]) for s in ("train", "val", "test")}
    parts["val_labels"] = np.array(labels)
    with pytest.raises(ValueError, match=f"toy val split: {bad} out of range 0..1"):
        utils.datasets.TextDataset(name="toy", class_names=("neg", "pos"), **parts)
