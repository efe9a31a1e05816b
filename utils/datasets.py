"""The series' datasets: where they come from, how they are cached, how they load.

Every dataset the series uses is described once in :data:`REGISTRY`: its
canonical URL, size and hash, the folder its archive extracts to and its class
names. :func:`fetch` downloads an archive (with a progress bar), verifies its
hash, and extracts it safely into the cache; loaders then return texts and
integer labels split into train / validation / test.

The cache is ``data/`` at the repository root, or the folder named by the
``TEXTCLF_DATA`` environment variable. A folder that already holds the
extracted dataset (``data/imdb/aclImdb/`` for IMDB, ``data/ag_news/ag_news_csv/``
for AG News, ...) is used as it is, so an existing copy can be dropped in
without downloading anything.

Nothing half-written is ever left under a name the loaders read: a download
goes to a ``.download-<pid>-*`` folder and an extraction to a
``.extract-<pid>-*`` folder, and each is renamed into place only once it is
complete and verified. A process killed mid-way (power cut, OOM killer, Ctrl-C
twice) leaves only such a folder behind, and the next :func:`fetch` removes
the ones whose process no longer runs before it starts again.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pooch
import requests
from sklearn.model_selection import train_test_split

from utils import REPO_ROOT
from utils.processes import remove_stale_staging, staging_folder
from utils.readers import DatasetError, read_aclimdb_split, read_zhang_csv

DATA_ENV_VAR = "TEXTCLF_DATA"

#: Seed of the fixed validation split; change it only on purpose.
SPLIT_SEED = 42


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset comes from and what its archive holds.

    Attributes:
        name: registry key, also the name of the dataset's cache folder.
        url: canonical download URL of the archive.
        size: archive size in bytes, as published.
        known_hash: ``"sha256:<hex>"`` or ``"md5:<hex>"`` of the archive.
        folder: the single top-level folder the archive extracts to.
        layout: ``"aclimdb"`` (one text file per review) or ``"zhang_csv"``.
        class_names: class names in label order (label 0 first).
        required: paths inside ``folder`` that a complete copy must have.
        train_size: number of labelled training documents, as published.
        test_size: number of test documents, as published.
        citation: who to credit.
    """

    name: str
    url: str
    size: int
    known_hash: str
    folder: str
    layout: str
    class_names: tuple[str, ...]
    required: tuple[str, ...]
    train_size: int
    test_size: int
    citation: str

    @property
    def archive_name(self) -> str:
        """File name of the archive in the cache."""
        return self.url.rsplit("/", 1)[-1]


_ZHANG = "Zhang, Zhao & LeCun (2015), Character-level Convolutional Networks for Text Classification"
_FASTAI = "https://s3.amazonaws.com/fast-ai-nlp/"

REGISTRY: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="imdb",
            url="http://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
            size=84_125_825,
            known_hash="sha256:c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
            folder="aclImdb",
            layout="aclimdb",
            class_names=("negative", "positive"),
            required=("train/neg", "train/pos", "test/neg", "test/pos"),
            train_size=25_000, test_size=25_000,
            citation="Maas et al. (2011), Learning Word Vectors for Sentiment Analysis, ACL",
        ),
        DatasetSpec(
            name="ag_news",
            url=_FASTAI + "ag_news_csv.tgz",
            size=11_784_419,
            known_hash="md5:b86f328f4dbd072486591cb7a5644dcd",
            folder="ag_news_csv",
            layout="zhang_csv",
            class_names=("World", "Sports", "Business", "Sci/Tech"),
            required=("train.csv", "test.csv"),
            train_size=120_000, test_size=7_600,
            citation=_ZHANG,
        ),
        DatasetSpec(
            name="dbpedia",
            url=_FASTAI + "dbpedia_csv.tgz",
            size=68_341_743,
            known_hash="sha256:42db5221ddedddb673a4cabcc5f3a7d869714c878bcfe4ba94b29d14aa38e417",
            folder="dbpedia_csv",
            layout="zhang_csv",
            class_names=(
                "Company", "EducationalInstitution", "Artist", "Athlete", "OfficeHolder",
                "MeanOfTransportation", "Building", "NaturalPlace", "Village", "Animal",
                "Plant", "Album", "Film", "WrittenWork",
            ),
            required=("train.csv", "test.csv"),
            train_size=560_000, test_size=70_000,
            citation=_ZHANG,
        ),
        DatasetSpec(
            name="yelp_polarity",
            url=_FASTAI + "yelp_review_polarity_csv.tgz",
            size=166_373_201,
            known_hash="sha256:528f22e286cad085948acbc3bea7e58188416546b0e364d0ae4ca0ce666abe35",
            folder="yelp_review_polarity_csv",
            layout="zhang_csv",
            class_names=("negative", "positive"),
            required=("train.csv", "test.csv"),
            train_size=560_000, test_size=38_000,
            citation=_ZHANG,
        ),
        DatasetSpec(
            name="amazon_polarity",
            url=_FASTAI + "amazon_review_polarity_csv.tgz",
            size=688_339_454,
            known_hash="sha256:d2a3ee7a214497a5d1b8eaed7c8d7ba2737de00ada3b0ec46243983efa100361",
            folder="amazon_review_polarity_csv",
            layout="zhang_csv",
            class_names=("negative", "positive"),
            required=("train.csv", "test.csv"),
            train_size=3_600_000, test_size=400_000,
            citation=_ZHANG,
        ),
    )
}


def get_spec(name: str) -> DatasetSpec:
    """Return the registry entry ``name``; raise ``KeyError`` listing the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


def data_home(data_dir: str | os.PathLike | None = None) -> Path:
    """Return the cache folder: ``data_dir``, else ``$TEXTCLF_DATA``, else ``<repo>/data``."""
    if data_dir is not None:
        return Path(data_dir)
    return Path(os.environ.get(DATA_ENV_VAR, REPO_ROOT / "data"))


def missing_parts(spec: DatasetSpec, folder: Path) -> list[str]:
    """Return the paths of ``spec.required`` that ``folder`` lacks (empty: complete)."""
    return [part for part in spec.required if not (folder / part).exists()]


def archive_matches(path: Path, known_hash: str) -> bool:
    """Return whether the file at ``path`` has the hash ``known_hash`` (``"<algorithm>:<hex>"``)."""
    algorithm, _, digest = known_hash.partition(":")
    return pooch.file_hash(str(path), alg=algorithm) == digest.lower()


def download(spec: DatasetSpec, cache: Path, url: str | None = None, progressbar: bool = True) -> Path:
    """Make sure the verified archive of ``spec`` is at ``cache/<archive name>``; return its path.

    An archive already there is kept if its hash matches and deleted
    otherwise (a copy cut short, or corrupted). A new one is downloaded with
    pooch into a staging folder, its hash checked, and only then moved into
    ``cache``; the staging folder is removed whatever happens.

    Raises:
        DatasetError: the download failed (HTTP error, refused or broken
            connection) or the hash of what arrived does not match.
    """
    archive = cache / spec.archive_name
    if archive.is_file():
        if archive_matches(archive, spec.known_hash):
            return archive
        archive.unlink()
    created = not cache.exists()
    cache.mkdir(parents=True, exist_ok=True)
    source = url or spec.url
    staging = staging_folder(cache, "download")
    try:
        pooch.retrieve(source, known_hash=spec.known_hash, fname=spec.archive_name, path=staging,
                       progressbar=progressbar)
        os.replace(staging / spec.archive_name, archive)
    except ValueError as exc:  # pooch's hash mismatch
        raise DatasetError(f"download of {spec.name} from {source} failed verification: {exc}") from exc
    except requests.RequestException as exc:  # HTTP error, refused or broken connection
        raise DatasetError(f"download of {spec.name} from {source} failed: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not archive.exists():  # a failed first download leaves no empty folder behind
            with contextlib.suppress(OSError):
                cache.rmdir()
    return archive


def extract_archive(archive: Path, destination: Path, expected_folder: str) -> Path:
    """Extract ``archive`` so that ``destination/expected_folder`` appears whole, or not at all.

    Members are extracted with tarfile's ``"data"`` filter, which refuses
    ``..`` components and links that point outside the destination, and
    extracts absolute paths inside it (leading ``/`` stripped). Extraction
    happens in a staging folder (:func:`staging_folder`) that is renamed into
    place only when complete, so a refused extraction leaves nothing behind and
    a killed one leaves only the staging folder, which the next :func:`fetch`
    removes.

    Args:
        archive: a ``.tar``, ``.tar.gz`` or ``.tgz`` file.
        destination: folder that receives ``expected_folder``.
        expected_folder: the single top-level folder the archive must contain.

    Returns:
        The path ``destination / expected_folder``.

    Raises:
        DatasetError: the archive is unreadable or truncated, a member would
            escape the destination, or the archive lacks ``expected_folder``.
    """
    destination.mkdir(parents=True, exist_ok=True)
    staging = staging_folder(destination, "extract")
    try:
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(staging, filter="data")
        except tarfile.FilterError as exc:
            raise DatasetError(
                f"refusing to extract {archive}: member {exc.tarinfo.name!r} would be "
                f"written outside {destination} ({exc})"
            ) from exc
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise DatasetError(f"cannot extract {archive}: broken or truncated archive ({exc})") from exc
        if not (staging / expected_folder).is_dir():
            found = sorted(p.name for p in staging.iterdir())
            raise DatasetError(f"{archive} has no top-level folder {expected_folder!r} (found {found})")
        target = destination / expected_folder
        os.replace(staging / expected_folder, target)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch(name: str, data_dir: str | os.PathLike | None = None, *, url: str | None = None,
          progressbar: bool = True) -> Path:
    """Make sure dataset ``name`` is extracted in the cache and return its folder.

    A complete extracted folder is used as is (nothing is downloaded).
    Otherwise staging folders left by killed runs are removed, the archive is
    downloaded and verified (:func:`download`) and extracted
    (:func:`extract_archive`). An archive that cannot be extracted safely, or
    lacks a required file, is deleted along with anything extracted from it,
    so that a failed call leaves the cache as it found it, less the debris of
    killed runs.

    Args:
        name: a key of :data:`REGISTRY`.
        data_dir: cache folder; default :func:`data_home`.
        url: download from here instead of the canonical URL (a mirror); the
            registry's hash is still required to match.
        progressbar: show a tqdm progress bar while downloading.

    Returns:
        ``<cache>/<name>/<spec.folder>``.

    Raises:
        DatasetError: the folder exists but is incomplete, the download fails
            or its hash does not match, or the archive cannot be extracted safely.
    """
    spec = get_spec(name)
    cache = data_home(data_dir) / spec.name
    folder = cache / spec.folder
    if folder.exists():
        missing = missing_parts(spec, folder)
        if not missing:
            return folder
        raise DatasetError(
            f"{folder} exists but is incomplete (missing {', '.join(missing)}); "
            "delete it to download again, or complete the copy"
        )
    remove_stale_staging(cache)
    archive = download(spec, cache, url, progressbar)
    try:
        extracted = extract_archive(archive, cache, spec.folder)
    except DatasetError:
        archive.unlink(missing_ok=True)
        raise
    missing = missing_parts(spec, extracted)
    if missing:
        shutil.rmtree(extracted)
        archive.unlink(missing_ok=True)
        raise DatasetError(f"archive {archive} lacks {', '.join(missing)} inside {spec.folder}/")
    return extracted


@dataclass(frozen=True)
class TextDataset:
    """Texts and integer labels, split three ways.

    The validation split is a fixed, seeded, stratified split of the training
    set; the test split is the dataset's own and is meant for the final score
    only.
    """

    name: str
    class_names: tuple[str, ...]
    train_texts: list[str]
    train_labels: np.ndarray
    val_texts: list[str]
    val_labels: np.ndarray
    test_texts: list[str]
    test_labels: np.ndarray

    def __post_init__(self) -> None:
        """Check that every split pairs one label with each text, and every label names a class.

        Raises:
            ValueError: a split's texts and labels differ in length, or a label
                lies outside ``0 .. num_classes - 1``; the message names the split.
        """
        for split in ("train", "val", "test"):
            texts, labels = getattr(self, f"{split}_texts"), getattr(self, f"{split}_labels")
            if len(texts) != len(labels):
                raise ValueError(f"{self.name} {split} split: length mismatch, {len(texts)} texts but "
                                 f"{len(labels)} labels")
            check_class_indices(labels, self.num_classes, f"{self.name} {split} split")

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)


def check_class_indices(labels: np.ndarray, num_classes: int, where: str) -> None:
    """Raise ``ValueError`` if a label is not a class index in ``0 .. num_classes - 1``.

    The message names ``where`` (a split, a file), the first offending label and its position.
    """
    labels = np.asarray(labels)
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{where}: labels must be integer class indices, got dtype {labels.dtype}")
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        raise ValueError(f"{where}: class index {labels[bad[0]]} at position {bad[0]} out of range "
                         f"0..{num_classes - 1} ({bad.size} such label(s))")


def split_train_validation(texts: list[str], labels: np.ndarray, validation_fraction: float,
                           seed: int = SPLIT_SEED) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """Split texts and labels into train and validation, stratified by label and seeded.

    Returns:
        ``(train_texts, train_labels, val_texts, val_labels)``.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    if len(texts) != len(labels):
        raise ValueError(f"split_train_validation: length mismatch, {len(texts)} texts but {len(labels)} labels")
    idx_train, idx_val = train_test_split(
        np.arange(len(texts)), test_size=validation_fraction, random_state=seed, stratify=labels,
    )
    return ([texts[i] for i in idx_train], labels[idx_train], [texts[i] for i in idx_val], labels[idx_val])


def load(name: str, data_dir: str | os.PathLike | None = None, *, validation_fraction: float = 0.2,
         seed: int = SPLIT_SEED) -> TextDataset:
    """Fetch (if needed) and load dataset ``name`` as a :class:`TextDataset`.

    Args:
        name: a key of :data:`REGISTRY`.
        data_dir: cache folder; default :func:`data_home`.
        validation_fraction: share of the training set held out for validation.
        seed: seed of the validation split.
    """
    spec = get_spec(name)
    folder = fetch(name, data_dir)
    if spec.layout == "aclimdb":
        train_texts, train_labels = read_aclimdb_split(folder, "train")
        test_texts, test_labels = read_aclimdb_split(folder, "test")
    else:
        n = len(spec.class_names)
        train_texts, train_labels = read_zhang_csv(folder / "train.csv", num_classes=n)
        test_texts, test_labels = read_zhang_csv(folder / "test.csv", num_classes=n)
    tr_x, tr_y, va_x, va_y = split_train_validation(train_texts, train_labels, validation_fraction, seed)
    return TextDataset(spec.name, spec.class_names, tr_x, tr_y, va_x, va_y, test_texts, test_labels)
