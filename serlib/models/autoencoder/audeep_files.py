"""auDeep interchange: export representations in auDeep's CSV/ARFF export layout and import such files.

Layout (auDeep's CSV export): columns ``filename, chunk_nr, label_nominal, label_numeric, feature_0 .. feature_{D-1}``
(labels last with ``labels_last``); ARFF relation ``auDeep exported data set`` written with liac-arff.
Import matches auDeep's ``filename`` (path relative to the data set's base folder, extension included)
to manifest utterances, and fuses several chunks of one file by concatenation in chunk order, as
``audeep fuse chunks`` does. Pure NumPy/pandas: importing this module does not load TensorFlow.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath

import arff
import numpy as np
import pandas as pd

RELATION = "auDeep exported data set"
METADATA_COLUMNS = ("filename", "chunk_nr", "label_nominal", "label_numeric")
FLOAT_FORMAT = "%.9g"  # 9 significant digits round-trip every float32 exactly
_NAMES_SHOWN = 10


class AudeepFileError(ValueError):
    """An auDeep CSV/ARFF file cannot be written or does not match the manifest; the message says why."""


# -- chunks ---------------------------------------------------------------------------------------
def fuse_chunks(
    ids: Sequence[str], chunk_numbers: Sequence[int] | np.ndarray, vectors: np.ndarray
) -> tuple[list[str], np.ndarray]:
    """One row per id: the vectors of its chunks concatenated in chunk order (``audeep fuse chunks``).

    Ids keep the order of their first row. Every id must have the same number K of chunks, numbered
    0..K-1 exactly once, as auDeep requires; without chunking (all chunk numbers 0) this is the identity.
    """
    ids = [str(i) for i in ids]
    chunks = np.asarray(chunk_numbers, dtype=np.int64).reshape(-1)
    vectors = np.asarray(vectors)
    if not (len(ids) == len(chunks) == len(vectors)):
        raise AudeepFileError(
            f"fuse_chunks: {len(ids)} ids, {len(chunks)} chunk numbers and {len(vectors)} vectors differ in length"
        )
    rows: dict[str, dict[int, int]] = {}
    duplicates: list[str] = []
    for row, (name, chunk) in enumerate(zip(ids, chunks, strict=True)):
        per_id = rows.setdefault(name, {})
        if int(chunk) in per_id:
            duplicates.append(f"{name} (chunk {int(chunk)})")
        per_id[int(chunk)] = row
    if duplicates:
        raise AudeepFileError(f"duplicate rows for {_names(duplicates)}: each file/chunk must occur once")
    if not rows:
        return [], vectors.reshape(0, 0)
    counts = {name: len(per_id) for name, per_id in rows.items()}
    expected = max(counts.values())
    bad = [
        f"{name} (chunks {sorted(per_id)})"
        for name, per_id in rows.items()
        if sorted(per_id) != list(range(expected))
    ]
    if bad:
        raise AudeepFileError(
            f"every file needs chunks 0..{expected - 1} exactly once (as auDeep's fuse requires); "
            f"incomplete: {_names(bad)}"
        )
    if expected == 1:
        return list(rows), vectors[[per_id[0] for per_id in rows.values()]]
    order = np.array([[per_id[c] for c in range(expected)] for per_id in rows.values()])
    fused = vectors[order.reshape(-1)].reshape(len(rows), expected * vectors.shape[1])
    return list(rows), fused


# -- export ---------------------------------------------------------------------------------------
def _frame(
    ids: Sequence[str],
    vectors: np.ndarray,
    labels: Sequence[str | None] | None,
    chunk_numbers: Sequence[int] | np.ndarray | None,
    labels_last: bool,
) -> tuple[pd.DataFrame, list[str]]:
    vectors = np.asarray(vectors)
    if vectors.ndim != 2:
        raise AudeepFileError(f"vectors must be 2-D [instances, features], got shape {vectors.shape}")
    n = len(ids)
    if len(vectors) != n:
        raise AudeepFileError(f"{n} ids but {len(vectors)} vectors")
    chunks = np.zeros(n, np.int64) if chunk_numbers is None else np.asarray(chunk_numbers, np.int64)
    if len(chunks) != n:
        raise AudeepFileError(f"{n} ids but {len(chunks)} chunk numbers")
    label_list: list[str | None] = (
        [None] * n if labels is None else [None if v in (None, "") else str(v) for v in labels]
    )
    if len(label_list) != n:
        raise AudeepFileError(f"{n} ids but {len(label_list)} labels")
    names = sorted({v for v in label_list if v is not None})
    numeric = {name: index for index, name in enumerate(names)}
    features = [f"feature_{i}" for i in range(vectors.shape[1])]
    meta = {
        "filename": [str(i) for i in ids],
        "chunk_nr": chunks,
        "label_nominal": pd.array(label_list, dtype="object"),
        "label_numeric": pd.array(
            [numeric.get(v) if v is not None else None for v in label_list], dtype="Int64"
        ),
    }
    frame = pd.concat([pd.DataFrame(meta), pd.DataFrame(vectors, columns=features)], axis=1)
    order = ["filename", "chunk_nr"]
    order += (
        [*features, "label_nominal", "label_numeric"]
        if labels_last
        else ["label_nominal", "label_numeric", *features]
    )
    return frame[order], names


def _write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _with_extension(path: str | os.PathLike[str], extension: str) -> Path:
    """``path`` ending in ``extension`` (any case): appended, not substituted, so ``rep.v1`` keeps its dot part."""
    path = Path(path)
    return path if path.suffix.lower() == extension else path.with_name(path.name + extension)


def export_csv(
    path: str | os.PathLike[str],
    ids: Sequence[str],
    vectors: np.ndarray,
    labels: Sequence[str | None] | None = None,
    chunk_numbers: Sequence[int] | np.ndarray | None = None,
    labels_last: bool = False,
) -> Path:
    """Write auDeep's CSV export layout (``.csv`` appended if missing); floats are written losslessly.

    ``label_numeric`` is the index of the label in the sorted label names (auDeep's label map for
    nominal labels); missing labels are empty fields.
    """
    path = _with_extension(path, ".csv")
    frame, _ = _frame(ids, vectors, labels, chunk_numbers, labels_last)
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, float_format=FLOAT_FORMAT, lineterminator="\n")
    return _write_text(path, buffer.getvalue())


def export_arff(
    path: str | os.PathLike[str],
    ids: Sequence[str],
    vectors: np.ndarray,
    labels: Sequence[str | None] | None = None,
    chunk_numbers: Sequence[int] | np.ndarray | None = None,
    labels_last: bool = False,
) -> Path:
    """Write auDeep's ARFF export layout (relation ``auDeep exported data set``, liac-arff).

    ``label_nominal`` is NOMINAL over the sorted label names present (STRING when there are none,
    since ARFF has no empty nominal type); missing values are ``?``. Floats use Python's shortest
    round-trip representation, so float32 values come back exactly.
    """
    path = _with_extension(path, ".arff")
    frame, names = _frame(ids, vectors, labels, chunk_numbers, labels_last)
    attributes: list[tuple[str, object]] = []
    for column in frame.columns:
        if column == "filename":
            attributes.append((column, "STRING"))
        elif column in ("chunk_nr", "label_numeric"):
            attributes.append((column, "INTEGER"))
        elif column == "label_nominal":
            attributes.append((column, list(names) if names else "STRING"))
        else:
            attributes.append((column, "REAL"))
    vectors = np.asarray(vectors)
    feature_values = vectors.astype(np.float64).tolist()  # exact widening of float32
    feature_start = 2 if labels_last else 4
    rows = []
    meta = frame[["filename", "chunk_nr", "label_nominal", "label_numeric"]]
    for (filename, chunk, nominal, numeric), values in zip(
        meta.itertuples(index=False), feature_values, strict=True
    ):
        nominal = None if nominal is None or nominal is pd.NA else nominal
        numeric = None if numeric is None or numeric is pd.NA else int(numeric)
        labels_part = [nominal, numeric]
        row = [filename, int(chunk)]
        row += [*values, *labels_part] if feature_start == 2 else [*labels_part, *values]
        rows.append(row)
    text = arff.dumps({"relation": RELATION, "description": "", "attributes": attributes, "data": rows})
    return _write_text(path, text + "\n")


# -- import ---------------------------------------------------------------------------------------
def read_exported(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read an auDeep CSV or ARFF export into a DataFrame (columns as in the file; features float32)."""
    path = Path(path)
    if not path.is_file():
        raise AudeepFileError(f"{path} does not exist (expected an auDeep CSV or ARFF export)")
    text = path.read_text(encoding="utf-8-sig")
    is_arff = path.suffix.lower() == ".arff" or text.lstrip().lower().startswith(("@relation", "%"))
    if is_arff:
        try:
            data = arff.loads(text)
        except (arff.ArffException, ValueError) as error:
            raise AudeepFileError(f"{path} is not a valid ARFF file: {error}") from None
        columns = [name for name, _ in data["attributes"]]
        frame = pd.DataFrame(data["data"], columns=columns)
    else:
        try:
            frame = pd.read_csv(
                io.StringIO(text), dtype={"filename": str, "label_nominal": str}, keep_default_na=False
            )
        except (pd.errors.ParserError, ValueError) as error:
            raise AudeepFileError(f"{path} is not a valid CSV file: {error}") from None
    features = [c for c in frame.columns if str(c).startswith("feature_")]
    if "filename" not in frame.columns or not features:
        raise AudeepFileError(
            f"{path}: expected auDeep export columns 'filename' and 'feature_0'..; found {list(frame.columns)[:8]}"
        )
    indices = sorted(int(str(c)[len("feature_") :]) for c in features)
    if indices != list(range(len(features))):
        raise AudeepFileError(f"{path}: feature columns are not feature_0..feature_{len(features) - 1}")
    frame = frame.copy()
    try:
        for column in features:
            frame[column] = pd.to_numeric(frame[column], errors="raise").astype(np.float32)
    except (ValueError, TypeError) as error:
        raise AudeepFileError(f"{path}: non-numeric feature value ({error})") from None
    if "chunk_nr" not in frame.columns:
        frame["chunk_nr"] = 0
    frame["chunk_nr"] = pd.to_numeric(frame["chunk_nr"], errors="coerce")
    if frame["chunk_nr"].isna().any():
        raise AudeepFileError(f"{path}: chunk_nr has empty or non-integer values")
    frame["chunk_nr"] = frame["chunk_nr"].astype(np.int64)
    frame["filename"] = frame["filename"].astype(str)
    return frame


def _normalised(path: str) -> str:
    """A file path as forward-slash parts without leading './' (auDeep writes OS-native separators)."""
    pure = PureWindowsPath(path) if "\\" in path else PurePosixPath(path)
    return "/".join(part for part in pure.parts if part not in (".", ""))


def _names(items: Sequence[str]) -> str:
    shown = ", ".join(repr(i) for i in items[:_NAMES_SHOWN])
    more = f" and {len(items) - _NAMES_SHOWN} more" if len(items) > _NAMES_SHOWN else ""
    return f"{len(items)}: {shown}{more}"


def _matcher(manifest: pd.DataFrame):
    ids = manifest["utterance_id"].astype(str).tolist()
    by_id = {utterance: index for index, utterance in enumerate(ids)}
    paths = (
        [_normalised(str(p)) for p in manifest["path"].astype(str)] if "path" in manifest else [""] * len(ids)
    )

    def match(filename: str) -> int | None:
        relative = _normalised(filename)
        stem = PurePosixPath(relative).stem
        if stem in by_id:
            return by_id[stem]
        if relative in by_id:
            return by_id[relative]
        hits = [i for i, p in enumerate(paths) if p == relative or p.endswith("/" + relative)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise AudeepFileError(
                f"file name {filename!r} matches several manifest utterances "
                f"({_names([ids[i] for i in hits])}); give longer relative paths in the export"
            )
        return None

    return ids, match


def import_representations(
    path: str | os.PathLike[str], manifest: pd.DataFrame, allow_missing: bool = False
) -> tuple[list[str], np.ndarray]:
    """Vectors of an auDeep CSV/ARFF export, matched to manifest utterances, in manifest order.

    A row matches an utterance when its ``filename`` without folders and extension equals the
    ``utterance_id``, or when it equals (or is a trailing part of) the manifest ``path``. Rows that
    match nothing, repeated file/chunk rows, and (unless ``allow_missing``) utterances without a row are
    errors naming them. Several chunks of one file are concatenated in chunk order (auDeep's fuse).
    """
    path = Path(path)
    frame = read_exported(path)
    ids, match = _matcher(manifest)
    rows = [match(name) for name in frame["filename"]]
    unmatched = [name for name, row in zip(frame["filename"], rows, strict=True) if row is None]
    if unmatched:
        raise AudeepFileError(
            f"{path}: rows whose filename matches no utterance of the manifest ({_names(unmatched)}); "
            "export from the same corpus or fix the manifest's utterance_id/path"
        )
    keys = [f"{ids[row]} (chunk {chunk})" for row, chunk in zip(rows, frame["chunk_nr"], strict=True)]
    counts = pd.Series(keys).value_counts()
    duplicates = [f"{key} x{count}" for key, count in counts.items() if count > 1]
    if duplicates:
        raise AudeepFileError(
            f"{path}: duplicate rows for the same utterance and chunk ({_names(duplicates)})"
        )
    features = [c for c in frame.columns if str(c).startswith("feature_")]
    features.sort(key=lambda c: int(str(c)[len("feature_") :]))
    vectors = frame[features].to_numpy(np.float32)
    row_ids = [ids[row] for row in rows]
    try:
        fused_ids, fused = fuse_chunks(row_ids, frame["chunk_nr"].to_numpy(), vectors)
    except AudeepFileError as error:
        raise AudeepFileError(f"{path}: {error}") from None
    position = {utterance: index for index, utterance in enumerate(fused_ids)}
    missing = [utterance for utterance in ids if utterance not in position]
    if missing and not allow_missing:
        raise AudeepFileError(
            f"{path}: manifest utterances without a row ({_names(missing)}); pass allow_missing=True to skip them"
        )
    ordered = [utterance for utterance in ids if utterance in position]
    return ordered, fused[[position[u] for u in ordered]] if ordered else fused[:0]
