"""Converters from the published MSA feature layouts to the shared on-disk schema (:mod:`modeling.features`).

Supported sources (layouts in ``data_and_metrics.md`` §A1/§A2):

* :func:`convert_mmsa_pickle` – thuiar/MMSA ``aligned_50.pkl`` / ``unaligned_50.pkl`` / SIMS / SIMS-v2 pickles.
* :func:`convert_mult_pickle` – MulT / CMU "processed_data" pickles (front zero padding, GloVe text vectors).
* :func:`convert_csd` – CMU-MultimodalSDK ``.csd`` computational sequences (HDF5) + a folds CSV.
* :func:`convert_label_csv` – MMSA ``label.csv`` (text and labels only).

Every converter returns ``(DatasetDict, metadata)``; :func:`dataset_card` renders the metadata as Markdown and
:func:`modeling.features.save_msa_dataset` writes both. Pickles are read with :func:`safe_load_pickle`, which
only rebuilds numpy arrays and builtin containers, so a hostile file cannot run code. Nothing here touches the
network except :func:`push_dataset_to_hub`, called only when a user asks for it.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import logging
import pickle
import re
from collections import OrderedDict, defaultdict
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from datasets import Array2D, Dataset, DatasetDict, Features
from huggingface_hub import DatasetCard, DatasetCardData, HfApi

from .features import METADATA_FILE, msa_features, save_msa_dataset, write_metadata

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------------------
# Restricted unpickling
# --------------------------------------------------------------------------------------------------------------


class UnsafePickleError(ValueError):
    """A pickle asked for a global outside the allow-list; nothing from it was executed."""


class PickleFormatError(ValueError):
    """A file could not be read as a pickle (empty, truncated, corrupt or another format)."""


def _latin1_encode(text: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
    """Stand-in for ``_codecs.encode``, which protocol 0-2 pickles use to store ``bytes`` (numpy buffers)."""
    if encoding.lower().replace("_", "-") not in ("latin1", "latin-1") or not isinstance(text, str):
        raise UnsafePickleError(f"refused _codecs.encode call with encoding {encoding!r}")
    return codecs.encode(text, "latin1", errors)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    """(module, name) -> object for every global a numpy/builtin pickle may reference."""
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray, numeric
    table: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for prefix in ("numpy.core", "numpy._core"):
        table[(f"{prefix}.multiarray", "_reconstruct")] = multiarray._reconstruct
        table[(f"{prefix}.multiarray", "scalar")] = multiarray.scalar
        table[(f"{prefix}.numeric", "_frombuffer")] = numeric._frombuffer
    for module in ("builtins", "__builtin__"):
        for obj in (dict, list, tuple, set, str, bytes, int, float, bool, complex):
            table[(module, obj.__name__)] = obj
    table[("_codecs", "encode")] = _latin1_encode
    return table


_ALLOWED = _allowed_globals()


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy array/dtype/scalar globals and builtin containers and scalars.

    Any other global (``os.system``, ``builtins.eval``, torch classes, ...) raises :class:`UnsafePickleError`
    when it is looked up, i.e. before anything could call it. Persistent ids (``torch.save``) are refused too.
    """

    def __init__(self, file, source: str = "<pickle>", allow_ordered_dict: bool = True):
        super().__init__(file, encoding="latin1")
        self._source = source
        self._allowed = dict(_ALLOWED)
        if allow_ordered_dict:
            self._allowed[("collections", "OrderedDict")] = OrderedDict

    def find_class(self, module: str, name: str) -> Any:
        obj = self._allowed.get((module, name))
        if obj is not None:
            return obj
        hint = ""
        if module.split(".")[0] == "torch":
            hint = (
                " The file holds torch objects (e.g. MMSA-FET with return_type='pt'); torch tensors cannot be "
                "unpickled safely. Convert them to numpy in a trusted session (tensor.numpy()) and pickle again."
            )
        raise UnsafePickleError(
            f"{self._source}: refused global '{module}.{name}': only numpy arrays/dtypes and builtin containers "
            f"and scalars may be unpickled; nothing was executed.{hint}"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(
            f"{self._source}: refused a persistent id (torch.save-style storage); convert tensors to numpy first."
        )


def safe_load_pickle(path: str | Path, allow_ordered_dict: bool = True) -> Any:
    """Load a pickle holding only numpy arrays and builtin objects; refuse anything that would run code."""
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(8)
        if not head:
            raise PickleFormatError(f"{path}: the file is empty")
        if head.startswith(b"PK\x03\x04"):
            raise PickleFormatError(
                f"{path}: this is a zip archive (torch.save format?), not a pickle; load it with torch in a "
                "trusted session and save the arrays as numpy."
            )
        if head.startswith(b"\x89HDF"):
            raise PickleFormatError(f"{path}: this is an HDF5 file (a CMU-SDK .csd?); use convert_csd")
        fh.seek(0)
        try:
            return RestrictedUnpickler(fh, source=str(path), allow_ordered_dict=allow_ordered_dict).load()
        except UnsafePickleError as err:
            if str(path) in str(err):
                raise
            raise UnsafePickleError(f"{path}: {err}") from None
        except Exception as err:  # any failure while decoding untrusted bytes means a damaged file
            raise PickleFormatError(
                f"{path}: cannot read the pickle (truncated or corrupt?): {type(err).__name__}: {err}"
            ) from err


# --------------------------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------------------------

_SPLIT_ALIASES = {"train": "train", "valid": "validation", "dev": "validation", "validation": "validation",
                  "test": "test"}
_DATASET_PATTERNS = (("simsv2", r"sims[-_ ]?v2"), ("sims", r"sims"), ("mosei", r"mosei"), ("mosi", r"mosi"))
_LENGTH_KEYS = ("audio_lengths", "vision_lengths")
_UNIMODAL_MMSA = {"regression_labels_T": "labels_text", "regression_labels_A": "labels_audio",
                  "regression_labels_V": "labels_vision"}


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file (hex), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _source_entry(path: Path, role: str | None = None) -> dict[str, str]:
    entry = {"name": path.name, "sha256": file_sha256(path)}
    if role:
        entry["role"] = role
    return entry


def guess_dataset_name(*hints: str) -> str:
    """'mosi' / 'mosei' / 'sims' / 'simsv2' from file names or root keys; 'unknown' when nothing matches."""
    for hint in hints:
        text = str(hint).lower()
        for name, pattern in _DATASET_PATTERNS:
            if re.search(pattern, text):
                return name
    return "unknown"


def _path_hints(path: Path) -> list[str]:
    return [path.name] + [p.name for p in list(path.resolve().parents)[:2]]


def _metric_scale(name: str, has_unimodal: bool) -> str:
    """'sims' (labels in [-1, 1], SIMS bins) or 'mosi' (labels in [-3, 3], MOSI/MOSEI metrics)."""
    if name in ("sims", "simsv2") or (name == "unknown" and has_unimodal):
        return "sims"
    return "mosi"


def _to_str(value: Any) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.decode("latin1")
    return str(value)


def _replace_nonfinite(array: np.ndarray) -> tuple[np.ndarray, int]:
    """float32 copy-or-view with ``±inf``/NaN set to 0, and how many values were replaced."""
    array = np.asarray(array, dtype=np.float32)
    bad = ~np.isfinite(array)
    count = int(bad.sum())
    if count:
        array = array.copy() if not array.flags.writeable else array
        array[bad] = 0.0
    return array, count


def _stats(lengths: np.ndarray) -> dict[str, float]:
    lengths = np.asarray(lengths)
    if lengths.size == 0:
        return {"min": 0, "mean": 0.0, "max": 0}
    return {"min": int(lengths.min()), "mean": round(float(lengths.mean()), 2), "max": int(lengths.max())}


def _split_id(identifier: str) -> tuple[str, str]:
    video, sep, clip = identifier.partition("$_$")
    return (video, clip) if sep else (identifier, "")


def load_tokenizer(tokenizer: Any):
    """Return a tokenizer object; a path must be a local folder (never downloads).

    A folder holding only ``vocab.txt`` is read as an uncased WordPiece ``BertTokenizer``.
    """
    if not isinstance(tokenizer, (str, Path)):
        return tokenizer
    folder = Path(tokenizer)
    if not folder.is_dir():
        raise ValueError(f"tokenizer {str(tokenizer)!r} is not a local folder; converters never download")
    from transformers import AutoTokenizer, BertTokenizer

    has_config = any((folder / f).exists() for f in ("tokenizer_config.json", "tokenizer.json"))
    if not has_config and (folder / "vocab.txt").exists():
        return BertTokenizer.from_pretrained(str(folder), local_files_only=True)
    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


def _tokenize(tokenizer: Any, texts: list[str], max_length: int) -> list[list[int]]:
    """BERT ids with [CLS]/[SEP]; truncation keeps the final [SEP]."""
    if max_length < 2:
        raise ValueError(f"max_length must be at least 2 (room for [CLS] and [SEP]), got {max_length}")
    if not texts:
        return []
    return tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]


def _dataset(columns: Mapping[str, Any], features: Features) -> Dataset:
    """``Dataset.from_dict`` with the columns in schema order."""
    return Dataset.from_dict({k: columns[k] for k in features}, features=features)


def _without_av(features: Features) -> Features:
    return Features({k: v for k, v in features.items() if not k.startswith(("audio", "vision"))})


def _quality_fields(dataset: DatasetDict, nonfinite: dict, clamped: dict, stats: dict) -> dict[str, Any]:
    """Metadata every converter records: split sizes, replaced non-finite values, clamped lengths, length stats."""
    return {
        "split_sizes": {split: len(ds) for split, ds in dataset.items()},
        "nonfinite_replaced": nonfinite,
        "nonfinite_replaced_total": sum(sum(v.values()) for v in nonfinite.values()),
        "lengths_clamped": clamped,
        "lengths_clamped_total": sum(sum(v.values()) for v in clamped.values()),
        "length_stats": stats,
    }


def _log_report(label: str, metadata: dict[str, Any]) -> None:
    logger.info("%s: %s", label, conversion_summary(metadata).replace("\n", "; "))
    if metadata.get("nonfinite_replaced_total"):
        logger.warning("%s: replaced %d non-finite values with 0", label, metadata["nonfinite_replaced_total"])
    if metadata.get("lengths_clamped_total"):
        logger.warning("%s: clamped %d lengths to [1, padded length]", label, metadata["lengths_clamped_total"])


def _split_error(path: Path, split: str, key: str, found: Any, expected: str) -> ValueError:
    return ValueError(f"{path.name}: split '{split}', key '{key}': found shape {tuple(found)}, expected {expected}")


def _require(data: Mapping, key: str, path: Path, split: str, required: Sequence[str]) -> Any:
    if key not in data:
        raise ValueError(
            f"{path.name}: split '{split}' has no key '{key}' (required: {', '.join(required)}; "
            f"present: {', '.join(map(str, data))})"
        )
    return data[key]


def _top_level_splits(data: Any, path: Path, layout: str) -> tuple[dict[str, tuple[str, Mapping]], list[str]]:
    """Map the file's split keys to train/validation/test; return {our split: (file key, dict)} and ignored keys."""
    if not isinstance(data, Mapping):
        raise ValueError(
            f"{path.name}: expected a dict with keys train/valid/test at the top level of a {layout} pickle, "
            f"found {type(data).__name__}"
        )
    splits: dict[str, tuple[str, Mapping]] = {}
    ignored = []
    for key, value in data.items():
        name = _SPLIT_ALIASES.get(str(key).lower())
        if name is None:
            ignored.append(str(key))
            continue
        if name in splits:
            raise ValueError(f"{path.name}: keys '{splits[name][0]}' and '{key}' both map to split '{name}'")
        if not isinstance(value, Mapping):
            raise ValueError(f"{path.name}: split '{key}' should be a dict of arrays, found {type(value).__name__}")
        splits[name] = (str(key), value)
    if not splits:
        raise ValueError(
            f"{path.name}: no split found; expected top-level keys train/valid/test (or dev/validation), "
            f"found {[str(k) for k in data]}"
        )
    order = {"train": 0, "validation": 1, "test": 2}
    return dict(sorted(splits.items(), key=lambda kv: order[kv[0]])), ignored


def _float_vector(value: Any, n: int, path: Path, split: str, key: str) -> np.ndarray:
    """A per-sample float column of shape (N,) or (N, 1, ...); non-finite values are an error for labels."""
    array = np.asarray(value)
    if array.shape[:1] != (n,) or array.size != n:
        raise _split_error(path, split, key, array.shape, f"({n},) or ({n}, 1)")
    array = array.reshape(n).astype(np.float32)
    if not np.isfinite(array).all():
        raise ValueError(f"{path.name}: split '{split}', key '{key}': {int((~np.isfinite(array)).sum())} "
                         "non-finite labels")
    return array


def _string_vector(value: Any, n: int, path: Path, split: str, key: str) -> list[str]:
    array = np.asarray(value, dtype=object)
    if array.shape != (n,):
        raise _split_error(path, split, key, array.shape, f"({n},)")
    return [_to_str(v) for v in array]


def _clamp(lengths: np.ndarray, padded: int) -> tuple[np.ndarray, int]:
    clamped = np.clip(lengths, 1, max(int(padded), 1))
    return clamped, int((clamped != lengths).sum())


# --------------------------------------------------------------------------------------------------------------
# MMSA pickles
# --------------------------------------------------------------------------------------------------------------

_MMSA_REQUIRED = ("text_bert", "audio", "vision", "regression_labels", "id")


def convert_mmsa_pickle(
    path: str | Path, aligned: bool | None = None, dataset_name: str | None = None
) -> tuple[DatasetDict, dict[str, Any]]:
    """Convert an MMSA feature pickle (MOSI/MOSEI aligned/unaligned, SIMS, SIMS-v2).

    ``text_bert`` (N, 3, L) becomes ``input_ids`` trimmed to the attention-mask sum (kept as stored: a
    sentence truncated by MMSA has no final [SEP]). ``aligned=None`` detects the layout: files without
    ``audio_lengths``/``vision_lengths`` are word-aligned and their A/V length is the text token count.
    Lengths are clamped to [1, padded length]; ``±inf``/NaN in audio/vision become 0. Both are counted in
    the metadata. The ``text`` key (BERT hidden states) and ``classification_labels`` are not kept.
    """
    path = Path(path)
    splits, ignored_top = _top_level_splits(safe_load_pickle(path), path, "MMSA")
    with_lengths = {name: any(k in d for k in _LENGTH_KEYS) for name, (_, d) in splits.items()}
    if aligned is None:
        if len(set(with_lengths.values())) > 1:
            raise ValueError(f"{path.name}: some splits have audio_lengths/vision_lengths and others do not: "
                             f"{with_lengths}; pass aligned= explicitly")
        aligned = not any(with_lengths.values())
    name = dataset_name or guess_dataset_name(*_path_hints(path))

    def present_in_all(keys: Sequence[str]) -> bool:
        flags = {split: all(k in d for k in keys) for split, (_, d) in splits.items()}
        found = {split: [k for k in keys if k in d] for split, (_, d) in splits.items()}
        if len(set(flags.values())) > 1 or (not any(flags.values()) and any(found.values())):
            raise ValueError(f"{path.name}: keys {list(keys)} must be present in every split or in none; "
                             f"found {found}")
        return all(flags.values())

    has_unimodal = present_in_all(list(_UNIMODAL_MMSA))
    has_annotation = present_in_all(["annotations"])
    dims: dict[str, int] = {}
    padded = {"text": 0, "audio": 0, "vision": 0}
    used = set(_MMSA_REQUIRED) | {"raw_text", "annotations", *_LENGTH_KEYS, *_UNIMODAL_MMSA}
    ignored_split_keys: set[str] = set()
    columns: dict[str, dict[str, Any]] = {}
    nonfinite: dict[str, dict[str, int]] = {}
    clamped: dict[str, dict[str, int]] = {}
    stats: dict[str, dict[str, Any]] = {}

    for split, (key, data) in splits.items():
        get = partial(_require, data, path=path, split=key, required=_MMSA_REQUIRED)
        ignored_split_keys.update(str(k) for k in data if k not in used)
        text_bert = np.asarray(get("text_bert"))
        if text_bert.ndim != 3 or text_bert.shape[1] != 3:
            raise _split_error(path, key, "text_bert", text_bert.shape, "(N, 3, L_t)")
        n, _, l_text = text_bert.shape
        if not np.issubdtype(text_bert.dtype, np.number) or not np.isfinite(text_bert).all():
            raise ValueError(f"{path.name}: split '{key}', key 'text_bert': expected finite numbers, "
                             f"found dtype {text_bert.dtype}")
        token_ids = np.rint(text_bert[:, 0, :])
        if np.abs(token_ids - text_bert[:, 0, :]).max(initial=0) > 1e-6 or token_ids.min(initial=0) < 0:
            raise ValueError(f"{path.name}: split '{key}', key 'text_bert': row 0 must hold non-negative integer "
                             "token ids")
        token_ids = token_ids.astype(np.int64)
        text_count = np.clip(np.rint(text_bert[:, 1, :].sum(axis=1)).astype(np.int64), 0, l_text)

        arrays, lengths = {}, {}
        nonfinite[split], clamped[split] = {}, {}
        for modality in ("audio", "vision"):
            array = np.asarray(get(modality))
            if array.ndim != 3 or array.shape[0] != n:
                raise _split_error(path, key, modality, array.shape, f"({n}, L_{modality[0]}, D_{modality[0]})")
            if dims.setdefault(modality, array.shape[2]) != array.shape[2]:
                raise _split_error(path, key, modality, array.shape,
                                   f"({n}, L_{modality[0]}, {dims[modality]}) like the other splits")
            arrays[modality], nonfinite[split][modality] = _replace_nonfinite(array)
            padded[modality] = max(padded[modality], array.shape[1])
            if aligned:
                raw = text_count
            else:
                raw_value = get(f"{modality}_lengths")
                raw = np.asarray(raw_value, dtype=np.float64)
                if raw.shape != (n,) or not np.isfinite(raw).all():
                    raise _split_error(path, key, f"{modality}_lengths", raw.shape, f"({n},) finite integers")
                raw = np.rint(raw).astype(np.int64)
            lengths[modality], clamped[split][modality] = _clamp(raw, array.shape[1])
        padded["text"] = max(padded["text"], l_text)

        ids = _string_vector(get("id"), n, path, key, "id")
        video_clip = [_split_id(i) for i in ids]
        raw_text = _string_vector(data["raw_text"], n, path, key, "raw_text") if "raw_text" in data else [""] * n
        cols: dict[str, Any] = {
            "id": ids,
            "video_id": [v for v, _ in video_clip],
            "clip_id": [c for _, c in video_clip],
            "text": raw_text,
            "input_ids": [token_ids[i, : text_count[i]] for i in range(n)],
            "labels": _float_vector(get("regression_labels"), n, path, key, "regression_labels"),
        }
        for modality in ("audio", "vision"):
            cols[modality] = [arrays[modality][i, : lengths[modality][i]] for i in range(n)]
            cols[f"{modality}_lengths"] = lengths[modality].astype(np.int32)
        if has_unimodal:
            for source_key, column in _UNIMODAL_MMSA.items():
                cols[column] = _float_vector(data[source_key], n, path, key, source_key)
        if has_annotation:
            cols["annotation"] = _string_vector(data["annotations"], n, path, key, "annotations")
        columns[split] = cols
        stats[split] = {"text": _stats(text_count), "audio": _stats(lengths["audio"]),
                        "vision": _stats(lengths["vision"])}

    features = msa_features(dims["audio"], dims["vision"], unimodal_labels=has_unimodal, annotation=has_annotation)
    dataset = DatasetDict({split: _dataset(cols, features) for split, cols in columns.items()})
    all_labels = np.concatenate([c["labels"] for c in columns.values()])
    metadata = {
        "format": "mmsa_pickle",
        "dataset": name,
        "source_files": [_source_entry(path)],
        "aligned": bool(aligned),
        "modalities": ["text", "audio", "vision"],
        "text_source": "text_bert input ids (BERT vocabulary of the source file)",
        "padded_lengths": padded,
        "feature_dims": {"audio": int(dims["audio"]), "vision": int(dims["vision"])},
        **_quality_fields(dataset, nonfinite, clamped, stats),
        "label_range": [float(all_labels.min()), float(all_labels.max())] if all_labels.size else None,
        "scale": _metric_scale(name, has_unimodal),
        "ignored_keys": {"top_level": ignored_top, "per_split": sorted(ignored_split_keys)},
    }
    _log_report(path.name, metadata)
    return dataset, metadata


# --------------------------------------------------------------------------------------------------------------
# MulT / CMU processed-data pickles
# --------------------------------------------------------------------------------------------------------------

_MULT_REQUIRED = ("text", "audio", "vision", "labels", "id")


def _front_padded_lengths(array: np.ndarray) -> np.ndarray:
    """Rows after the leading all-zero rows (CMU arrays are zero-padded at the front); 0 when all rows are zero."""
    nonzero = (array != 0).any(axis=-1)
    first = nonzero.argmax(axis=1)
    return np.where(nonzero.any(axis=1), array.shape[1] - first, 0).astype(np.int64)


def _read_label_csv(path: Path) -> tuple[list[dict[str, str]], list[str]]:
    """Rows of an MMSA label.csv as strings (so SIMS ``0001`` clip ids keep their zeros), checked by header name."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    missing = [c for c in ("video_id", "clip_id", "text", "label") if c not in header]
    if missing:
        raise ValueError(f"{path.name}: missing column(s) {missing}; expected an MMSA label.csv header with "
                         f"video_id, clip_id, text, label, mode; found {header}")
    return rows, header


def _parse_float(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _clip_sort_key(clip: str) -> tuple[int, Any]:
    return (0, int(clip)) if clip.isdigit() else (1, clip)


def _join_label_csv(
    video_ids: list[str], starts: list[float | None], rows: list[dict[str, str]], tolerance: float = 0.05
) -> list[dict[str, str] | None]:
    """Match each segment to a label.csv row of the same video.

    With start times on both sides the nearest row start within ``tolerance`` seconds wins; otherwise the
    k-th segment of a video (by start time, else file order) takes the k-th row (by clip id), which requires
    the same number of segments on both sides.
    """
    by_video_rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_video_rows[row["video_id"]].append(row)
    by_video_segments: dict[str, list[int]] = defaultdict(list)
    for index, video in enumerate(video_ids):
        by_video_segments[video].append(index)
    matches: list[dict[str, str] | None] = [None] * len(video_ids)
    for video, segments in by_video_segments.items():
        candidates = by_video_rows.get(video, [])
        row_starts = [_parse_float(r.get("start", "")) for r in candidates]
        if candidates and all(s is not None for s in row_starts) and all(starts[i] is not None for i in segments):
            row_array = np.asarray(row_starts)
            for i in segments:
                j = int(np.abs(row_array - starts[i]).argmin())
                if abs(row_array[j] - starts[i]) <= tolerance:
                    matches[i] = candidates[j]
        elif len(candidates) == len(segments):
            ordered = sorted(segments, key=lambda i: (starts[i] is None, starts[i] or 0.0, i))
            ranked = sorted(candidates, key=lambda r: _clip_sort_key(r["clip_id"]))
            for i, row in zip(ordered, ranked):
                matches[i] = row
    return matches


def convert_mult_pickle(
    path: str | Path,
    aligned: bool | None = None,
    dataset_name: str | None = None,
    label_csv: str | Path | None = None,
    tokenizer: Any = None,
    max_length: int = 50,
) -> tuple[DatasetDict, dict[str, Any]]:
    """Convert a MulT / CMU processed-data pickle (``mosi_data.pkl``, ``mosei_senti_data_noalign.pkl``, ...).

    These arrays are zero-padded at the **front**: a sequence's length is the number of rows after the
    leading all-zero rows (aligned files, detected by equal padded lengths, use the text length for all
    three modalities). Lengths are clamped to at least 1.

    The text in these files is GloVe vectors, not token ids: the 300-d vectors are stored in an extra
    ``text_features`` Array2D column and ``input_ids`` is left empty. BERT-based models need a transcript
    source: pass ``label_csv`` (an MMSA label.csv) to fill ``text``/``clip_id`` by video id (and start time
    when the CSV has a ``start`` column, else segment order), plus ``tokenizer`` to fill ``input_ids``.
    ``id`` is ``"<video_id>[<start>:<end>]"`` from the file's (N, 3) id array, or ``"<video_id>$_$<clip_id>"``
    after a join. Labels (N, 1, 1) become the float score; IEMOCAP (N, 4, 2) labels are refused.
    """
    path = Path(path)
    splits, ignored_top = _top_level_splits(safe_load_pickle(path), path, "MulT")
    if tokenizer is not None and label_csv is None:
        raise ValueError("tokenizer given without label_csv: MulT pickles hold no transcripts to tokenize")
    tokenizer = load_tokenizer(tokenizer) if tokenizer is not None else None
    name = dataset_name or guess_dataset_name(*_path_hints(path))
    dims: dict[str, int] = {}
    padded = {"text": 0, "audio": 0, "vision": 0}
    columns: dict[str, dict[str, Any]] = {}
    nonfinite: dict[str, dict[str, int]] = {}
    clamped: dict[str, dict[str, int]] = {}
    stats: dict[str, dict[str, Any]] = {}
    starts: dict[str, list[float | None]] = {}
    detected_aligned = []
    ignored_split_keys: set[str] = set()

    for split, (key, data) in splits.items():
        get = partial(_require, data, path=path, split=key, required=_MULT_REQUIRED)
        ignored_split_keys.update(str(k) for k in data if k not in _MULT_REQUIRED)
        raw = {m: np.asarray(get(m)) for m in ("text", "audio", "vision")}
        if raw["text"].ndim != 3:
            raise _split_error(path, key, "text", raw["text"].shape, "(N, L_t, D_t)")
        n = raw["text"].shape[0]
        for modality, array in raw.items():
            if array.ndim != 3 or array.shape[0] != n:
                raise _split_error(path, key, modality, array.shape, f"({n}, L_{modality[0]}, D_{modality[0]})")
            if dims.setdefault(modality, array.shape[2]) != array.shape[2]:
                raise _split_error(path, key, modality, array.shape,
                                   f"({n}, L, {dims[modality]}) like the other splits")
            padded[modality] = max(padded[modality], array.shape[1])
        split_aligned = raw["text"].shape[1] == raw["audio"].shape[1] == raw["vision"].shape[1]
        detected_aligned.append(split_aligned)
        use_aligned = split_aligned if aligned is None else aligned
        true = {m: _front_padded_lengths(a) for m, a in raw.items()}
        if use_aligned:
            true = {m: true["text"] for m in raw}
        arrays, lengths = {}, {}
        nonfinite[split], clamped[split] = {}, {}
        for modality, array in raw.items():
            arrays[modality], nonfinite[split][modality] = _replace_nonfinite(array)
            lengths[modality], clamped[split][modality] = _clamp(true[modality], array.shape[1])

        labels = np.asarray(get("labels"))
        if labels.shape[:1] != (n,) or labels.size != n:
            raise _split_error(path, key, "labels", labels.shape,
                               f"({n}, 1, 1) sentiment scores (IEMOCAP emotion labels are not supported)")
        id_array = np.asarray(get("id"), dtype=object)
        if id_array.ndim == 1:
            id_array = id_array[:, None]
        if id_array.ndim != 2 or id_array.shape[0] != n:
            raise _split_error(path, key, "id", id_array.shape, f"({n}, 3) = [video_id, start, end]")
        id_strings = [[_to_str(v) for v in row] for row in id_array]
        videos = [row[0] for row in id_strings]
        times = [row[1:3] if len(row) >= 3 else [] for row in id_strings]
        cols: dict[str, Any] = {
            "id": [f"{v}[{t[0]}:{t[1]}]" if t else v for v, t in zip(videos, times)],
            "video_id": videos,
            "clip_id": [""] * n,
            "text": [""] * n,
            "input_ids": [[] for _ in range(n)],
            "labels": _float_vector(labels, n, path, key, "labels"),
        }
        starts[split] = [_parse_float(t[0]) if t else None for t in times]
        cols["text_features"] = [arrays["text"][i, arrays["text"].shape[1] - lengths["text"][i]:] for i in range(n)]
        for modality in ("audio", "vision"):
            width = arrays[modality].shape[1]
            cols[modality] = [arrays[modality][i, width - lengths[modality][i]:] for i in range(n)]
            cols[f"{modality}_lengths"] = lengths[modality].astype(np.int32)
        columns[split] = cols
        stats[split] = {m: _stats(lengths[m]) for m in ("audio", "vision")}
        stats[split]["text_features"] = _stats(lengths["text"])

    join_report: dict[str, Any] | None = None
    sources = [_source_entry(path)]
    if label_csv is not None:
        csv_path = Path(label_csv)
        rows, _ = _read_label_csv(csv_path)
        sources.append(_source_entry(csv_path, role="label_csv"))
        join_report = {"matched": 0, "unmatched": 0, "label_mismatches": 0}
        for split, cols in columns.items():
            matches = _join_label_csv(cols["video_id"], starts[split], rows)
            matched = []
            for i, row in enumerate(matches):
                if row is None:
                    join_report["unmatched"] += 1
                    continue
                join_report["matched"] += 1
                cols["clip_id"][i] = row["clip_id"]
                cols["id"][i] = f"{row['video_id']}$_${row['clip_id']}"
                cols["text"][i] = row["text"]
                csv_label = _parse_float(row["label"])
                if csv_label is None or abs(csv_label - float(cols["labels"][i])) > 1e-3:
                    join_report["label_mismatches"] += 1
                matched.append(i)
            if tokenizer is not None:
                ids = _tokenize(tokenizer, [cols["text"][i] for i in matched], max_length)
                for i, token_ids in zip(matched, ids):
                    cols["input_ids"][i] = token_ids
            stats[split]["text"] = _stats([len(x) for x in cols["input_ids"]])

    features = msa_features(
        dims["audio"], dims["vision"], extra={"text_features": Array2D(shape=(None, dims["text"]), dtype="float32")}
    )
    dataset = DatasetDict({split: _dataset(cols, features) for split, cols in columns.items()})
    is_aligned = all(detected_aligned) if aligned is None else aligned
    metadata = {
        "format": "mult_pickle",
        "dataset": name,
        "source_files": sources,
        "aligned": bool(is_aligned),
        "modalities": ["text", "audio", "vision"],
        "text_source": ("GloVe vectors in 'text_features'; input_ids "
                        + ("from label_csv transcripts" if tokenizer is not None else "empty")),
        "padded_lengths": padded,
        "feature_dims": {"text_features": int(dims["text"]), "audio": int(dims["audio"]),
                         "vision": int(dims["vision"])},
        **_quality_fields(dataset, nonfinite, clamped, stats),
        "scale": _metric_scale(name, False),
        "ignored_keys": {"top_level": ignored_top, "per_split": sorted(ignored_split_keys)},
    }
    if join_report is not None:
        metadata["label_csv_join"] = join_report
    _log_report(path.name, metadata)
    return dataset, metadata


# --------------------------------------------------------------------------------------------------------------
# CMU-MultimodalSDK .csd files
# --------------------------------------------------------------------------------------------------------------

_CSD_ROLES = ("words", "labels", "audio", "vision")
_CSD_ROLE_PATTERNS = {
    "words": r"word",
    "labels": r"label|sentiment|opinion",
    "audio": r"covarep|opensmile|acoustic|audio|wav2vec",
    "vision": r"facet|openface|visual|vision",
}
_CSD_ROLE_ALIASES = {"text": "words", "acoustic": "audio", "visual": "vision", "label": "labels", "word": "words"}


def _csd_root(path: Path) -> tuple[h5py.File, str]:
    """Open a ``.csd`` file and return it with its first root key (the sequence name)."""
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path}: cannot open as HDF5 (.csd): {err}") from err
    keys = list(handle.keys())
    if not keys or "data" not in handle[keys[0]]:
        handle.close()
        raise ValueError(f"{path.name}: not a CMU-SDK computational sequence (expected <root>/data, found "
                         f"root keys {keys})")
    return handle, keys[0]


def _classify_csd(paths: list[Path], roles: Sequence[str]) -> dict[str, Path]:
    """Assign the given roles (words/labels/audio/vision) from file names and root keys."""
    candidates: dict[str, list[Path]] = {role: [] for role in _CSD_ROLES}
    for path in paths:
        handle, root = _csd_root(path)
        handle.close()
        text = f"{path.stem} {root}".lower()
        for role in _CSD_ROLES:
            if role == "words" and re.search(r"vector|glove|embedding", text):
                continue
            if re.search(_CSD_ROLE_PATTERNS[role], text):
                candidates[role].append(path)
                break
    chosen = {}
    for role in roles:
        found = candidates[role]
        if role == "labels" and len(found) > 1:
            preferred = [p for p in found if re.search(r"sentiment|opinion", p.stem.lower())]
            found = preferred if len(preferred) == 1 else found
        if len(found) != 1:
            raise ValueError(
                f"cannot pick the {role} file among {[p.name for p in found] or 'no candidates'} "
                f"(from {[p.name for p in paths]}); name it explicitly (mapping key or --{role})"
            )
        chosen[role] = found[0]
    return chosen


def resolve_csd_files(folder_or_files: Any, overrides: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Role (words/labels/audio/vision) -> ``.csd`` path from a folder, a list of paths or a mapping.

    Roles not given in a mapping or in ``overrides`` are guessed from file names and root keys.
    """
    fixed = {_CSD_ROLE_ALIASES.get(k, k): Path(v) for k, v in (overrides or {}).items()}
    if isinstance(folder_or_files, Mapping):
        fixed = {**{_CSD_ROLE_ALIASES.get(k, k): Path(v) for k, v in folder_or_files.items()}, **fixed}
        paths: list[Path] = []
    elif isinstance(folder_or_files, (str, Path)):
        folder = Path(folder_or_files)
        if not folder.is_dir():
            raise ValueError(f"{folder}: not a folder of .csd files")
        paths = sorted(folder.glob("*.csd"))
    else:
        paths = [Path(p) for p in folder_or_files]
    unknown = [r for r in fixed if r not in _CSD_ROLES]
    if unknown:
        raise ValueError(f"unknown csd role(s) {unknown}; expected {list(_CSD_ROLES)}")
    todo = [r for r in _CSD_ROLES if r not in fixed]
    if todo and not paths:
        raise ValueError(f"no .csd file given for {todo}")
    chosen = _classify_csd([p for p in paths if p not in fixed.values()], todo) if todo else {}
    return {r: fixed.get(r) or chosen[r] for r in _CSD_ROLES}


def _read_folds(folds: Any) -> tuple[dict[str, str], Path | None]:
    """video id -> train/validation/test from a ``video_id,mode`` CSV or a mapping."""
    if isinstance(folds, Mapping):
        if all(str(k).lower() in _SPLIT_ALIASES and not isinstance(v, str) for k, v in folds.items()):
            pairs = [(video, mode) for mode, videos in folds.items() for video in videos]
        else:
            pairs = list(folds.items())
        source = None
    else:
        source = Path(folds)
        with open(source, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if not {"video_id", "mode"} <= set(reader.fieldnames or []):
                raise ValueError(f"{source.name}: expected columns video_id,mode; found {reader.fieldnames}")
            pairs = [(row["video_id"], row["mode"]) for row in reader]
    mapping = {}
    for video, mode in pairs:
        split = _SPLIT_ALIASES.get(str(mode).strip().lower())
        if split is None:
            raise ValueError(f"{source.name if source else 'folds'}: video '{video}' has mode {mode!r}; "
                             "expected train/valid/test")
        mapping[str(video)] = split
    return mapping, source


def _csd_video(group, role_file: Path, video: str) -> tuple[np.ndarray, np.ndarray]:
    """(features, intervals) of one video, checked: both 2-D with the same number of rows."""
    features = group[video]["features"][()]
    intervals = group[video]["intervals"][()]
    if features.ndim != 2 or intervals.ndim != 2 or intervals.shape[1] != 2 or features.shape[0] != intervals.shape[0]:
        raise ValueError(
            f"{role_file.name}: video '{video}': features shape {features.shape} and intervals shape "
            f"{intervals.shape}; expected (T, D) and (T, 2) with the same T"
        )
    return features, intervals.astype(np.float64)


def _word_average(frames: np.ndarray, frame_iv: np.ndarray, word_iv: np.ndarray) -> tuple[np.ndarray, int]:
    """Mean of the frames overlapping each word (or containing its midpoint); zeros for words with no frame."""
    if len(word_iv):
        near = (frame_iv[:, 1] >= word_iv[:, 0].min()) & (frame_iv[:, 0] <= word_iv[:, 1].max())
        frames, frame_iv = frames[near], frame_iv[near]
    mid = word_iv.mean(axis=1)
    overlap = (frame_iv[None, :, 0] < word_iv[:, None, 1]) & (frame_iv[None, :, 1] > word_iv[:, None, 0])
    contains = (frame_iv[None, :, 0] <= mid[:, None]) & (frame_iv[None, :, 1] > mid[:, None])
    weights = (overlap | contains).astype(np.float32)
    counts = weights.sum(axis=1, keepdims=True)
    averaged = (weights @ frames) / np.maximum(counts, 1.0)
    return averaged.astype(np.float32), int((counts == 0).sum())


def _csd_metadata(handle, root: str) -> dict[str, str]:
    group = handle[root].get("metadata")
    if group is None:
        return {}
    out = {}
    for key in group:
        value = group[key][()]
        value = value.reshape(-1)[0] if isinstance(value, np.ndarray) and value.size else value
        out[str(key)] = _to_str(value)
    return out


def convert_csd(
    folder_or_files: Any,
    folds: Any,
    tokenizer: Any,
    aligned: bool = True,
    max_length: int = 50,
    dataset_name: str | None = None,
    first_clip_id: int = 1,
) -> tuple[DatasetDict, dict[str, Any]]:
    """Convert CMU-SDK ``.csd`` files (words, opinion labels, acoustic, visual) into one row per labelled segment.

    ``folder_or_files``: a folder, a list of ``.csd`` paths (roles guessed from names/root keys) or a mapping
    ``{'words', 'labels', 'audio', 'vision'} -> path``. The first root key of each file is used. A word
    belongs to a segment when its midpoint lies in the segment interval; ``sp`` (pause) tokens are dropped and
    the words joined and lower-cased into ``text``, then tokenised. ``aligned=True`` averages the A/V frames
    overlapping each word (one vector per *word*, not per BERT token); ``aligned=False`` keeps the raw frames
    whose midpoint lies in the segment. A segment without words/frames gets one zero row (length 1, counted).
    Segments are ordered by start time; ``clip_id`` is ``first_clip_id`` + their index in the video (MOSI
    numbering). Label files with several columns (MOSEI ``CMU_MOSEI_Labels``) give column 0 (sentiment).
    Splits come from ``folds`` (CSV ``video_id,mode`` or a mapping); videos without a fold or missing from
    a modality file are skipped and reported.
    """
    files = resolve_csd_files(folder_or_files)
    fold_of, folds_path = _read_folds(folds)
    tokenizer = load_tokenizer(tokenizer)
    handles, groups, roots, csd_meta = {}, {}, {}, {}
    try:
        for role, path in files.items():
            handles[role], roots[role] = _csd_root(path)
            groups[role] = handles[role][roots[role]]["data"]
            csd_meta[role] = _csd_metadata(handles[role], roots[role])
        name = dataset_name or guess_dataset_name(*roots.values(), *(p.name for p in files.values()))
        rows: dict[str, dict[str, list]] = {s: defaultdict(list) for s in ("train", "validation", "test")}
        nonfinite: dict[str, dict[str, int]] = {s: {"audio": 0, "vision": 0} for s in rows}
        empty: dict[str, dict[str, int]] = {s: {"audio": 0, "vision": 0} for s in rows}
        no_fold, missing = [], {role: [] for role in ("words", "audio", "vision")}
        words_without_frames = 0
        dims: dict[str, int] = {}
        for video in groups["labels"]:
            split = fold_of.get(video)
            if split is None:
                no_fold.append(video)
                continue
            absent = [role for role in missing if video not in groups[role]]
            for role in absent:
                missing[role].append(video)
            if absent:
                continue
            labels, label_iv = _csd_video(groups["labels"], files["labels"], video)
            words, word_iv = _csd_video(groups["words"], files["words"], video)
            tokens = np.array([_to_str(w).strip() for w in words[:, 0]], dtype=object)
            keep = (tokens != "sp") & (tokens != "")
            tokens, word_iv = tokens[keep], word_iv[keep]
            word_mid = word_iv.mean(axis=1)
            av = {}
            for modality in ("audio", "vision"):
                frames, frame_iv = _csd_video(groups[modality], files[modality], video)
                if dims.setdefault(modality, frames.shape[1]) != frames.shape[1]:
                    raise ValueError(f"{files[modality].name}: video '{video}': feature width {frames.shape[1]}, "
                                     f"expected {dims[modality]} like the other videos")
                frames, count = _replace_nonfinite(frames)
                nonfinite[split][modality] += count
                av[modality] = (frames, frame_iv, frame_iv.mean(axis=1))
            for k, segment in enumerate(np.argsort(label_iv[:, 0], kind="stable")):
                start, end = label_iv[segment]
                in_segment = (word_mid >= start) & (word_mid < end)
                seg_words, seg_word_iv = tokens[in_segment], word_iv[in_segment]
                clip = str(first_clip_id + k)
                out = rows[split]
                out["id"].append(f"{video}$_${clip}")
                out["video_id"].append(video)
                out["clip_id"].append(clip)
                out["text"].append(" ".join(seg_words).lower())
                out["labels"].append(float(labels[segment, 0]))
                for modality, (frames, frame_iv, frame_mid) in av.items():
                    if aligned:
                        sequence, unmatched = _word_average(frames, frame_iv, seg_word_iv)
                        words_without_frames += unmatched
                    else:
                        sequence = frames[(frame_mid >= start) & (frame_mid < end)]
                    if len(sequence) == 0:
                        sequence = np.zeros((1, frames.shape[1]), np.float32)
                        empty[split][modality] += 1
                    out[modality].append(sequence)
                    out[f"{modality}_lengths"].append(len(sequence))
        sources = [_source_entry(files[role], role) for role in _CSD_ROLES]
    finally:
        for handle in handles.values():
            handle.close()
    if folds_path is not None:
        sources.append(_source_entry(folds_path, "folds"))
    if not dims:
        raise ValueError(f"no labelled segment found in {files['labels'].name} for the videos in the folds")
    features = msa_features(dims["audio"], dims["vision"])
    dataset, stats = {}, {}
    for split, cols in rows.items():
        if not cols:
            continue
        cols["input_ids"] = _tokenize(tokenizer, cols["text"], max_length)
        if not np.isfinite(cols["labels"]).all():
            raise ValueError(f"{files['labels'].name}: split '{split}' has non-finite labels")
        dataset[split] = _dataset(cols, features)
        stats[split] = {"text": _stats([len(x) for x in cols["input_ids"]]),
                        "audio": _stats(cols["audio_lengths"]), "vision": _stats(cols["vision_lengths"])}
    dataset = DatasetDict(dataset)
    if any(missing.values()):
        logger.warning("skipped videos missing from a modality file: %s", {k: v for k, v in missing.items() if v})
    metadata = {
        "format": "cmu_sdk_csd",
        "dataset": name,
        "source_files": sources,
        "csd_roots": roots,
        "csd_metadata": csd_meta,
        "aligned": bool(aligned),
        "alignment": "word-level averaging (one A/V vector per word)" if aligned else "raw frames per segment",
        "modalities": ["text", "audio", "vision"],
        "text_source": "CSD words (sp removed, lower-cased) tokenised with the given tokenizer",
        "max_length": int(max_length),
        "padded_lengths": None,
        "feature_dims": {"audio": int(dims["audio"]), "vision": int(dims["vision"])},
        "words_without_frames": words_without_frames,
        "videos_without_fold": sorted(no_fold),
        "videos_missing": {role: sorted(v) for role, v in missing.items()},
        **_quality_fields(dataset, nonfinite, empty, stats),
        "scale": _metric_scale(name, False),
    }
    _log_report(files["labels"].name, metadata)
    return dataset, metadata


# --------------------------------------------------------------------------------------------------------------
# MMSA label.csv
# --------------------------------------------------------------------------------------------------------------

_UNIMODAL_CSV = {"label_T": "labels_text", "label_A": "labels_audio", "label_V": "labels_vision"}


def convert_label_csv(
    path: str | Path, tokenizer: Any, max_length: int = 50, dataset_name: str | None = None
) -> tuple[DatasetDict, dict[str, Any]]:
    """Convert an MMSA ``label.csv`` (text + labels; no acoustic/visual features).

    Columns are read by header name (MOSEI's order differs) and as strings (SIMS clip id ``0001``).
    ``input_ids`` come from ``tokenizer`` (max ``max_length`` ids incl. [CLS]/[SEP]). The output has **no**
    audio/vision columns and the metadata says ``"modalities": ["text"]``; the collator treats the absent
    columns as missing modalities. ``label_T/A/V`` become unimodal labels when filled in every row.
    """
    path = Path(path)
    rows, header = _read_label_csv(path)
    if "mode" not in header:
        raise ValueError(f"{path.name}: missing column 'mode' (train/valid/test); found {header}")
    tokenizer = load_tokenizer(tokenizer)
    unimodal_columns = [c for c in _UNIMODAL_CSV if c in header]
    any_filled = [any((r.get(c) or "").strip() for c in unimodal_columns) for r in rows]
    all_filled = [len(unimodal_columns) == 3 and all((r.get(c) or "").strip() for c in unimodal_columns) for r in rows]
    has_unimodal = bool(rows) and all(all_filled)
    if not has_unimodal and any(any_filled):
        first = all_filled.index(False)
        raise ValueError(f"{path.name}: label_T/label_A/label_V must be filled in every row or in none "
                         f"(data row {first + 1}, video {rows[first]['video_id']!r} clip {rows[first]['clip_id']!r})")
    has_annotation = "annotation" in header
    columns: dict[str, dict[str, list]] = {}
    for number, row in enumerate(rows, start=1):
        where = f"{path.name}: data row {number} ({row['video_id']}/{row['clip_id']})"
        split = _SPLIT_ALIASES.get((row["mode"] or "").strip().lower())
        if split is None:
            raise ValueError(f"{where}: mode {row['mode']!r}, expected train/valid/test")
        label = _parse_float(row["label"])
        if label is None or not np.isfinite(label):
            raise ValueError(f"{where}: label {row['label']!r} is not a finite number")
        cols = columns.setdefault(split, defaultdict(list))
        cols["id"].append(f"{row['video_id']}$_${row['clip_id']}")
        cols["video_id"].append(row["video_id"])
        cols["clip_id"].append(row["clip_id"])
        cols["text"].append(row["text"] or "")
        cols["labels"].append(label)
        if has_unimodal:
            for source, column in _UNIMODAL_CSV.items():
                value = _parse_float(row[source])
                if value is None:
                    raise ValueError(f"{where}: {source} {row[source]!r} is not a number")
                cols[column].append(value)
        if has_annotation:
            cols["annotation"].append(row["annotation"] or "")
    features = _without_av(msa_features(1, 1, unimodal_labels=has_unimodal, annotation=has_annotation))
    order = [s for s in ("train", "validation", "test") if s in columns]
    dataset, stats = {}, {}
    for split in order:
        cols = columns[split]
        cols["input_ids"] = _tokenize(tokenizer, cols["text"], max_length)
        dataset[split] = _dataset(cols, features)
        stats[split] = {"text": _stats([len(x) for x in cols["input_ids"]])}
    dataset = DatasetDict(dataset)
    name = dataset_name or guess_dataset_name(*_path_hints(path))
    metadata = {
        "format": "mmsa_label_csv",
        "dataset": name,
        "source_files": [_source_entry(path)],
        "aligned": None,
        "modalities": ["text"],
        "text_source": "label.csv text tokenised with the given tokenizer",
        "max_length": int(max_length),
        "padded_lengths": None,
        "feature_dims": {},
        **_quality_fields(dataset, {}, {}, stats),
        "scale": _metric_scale(name, has_unimodal),
        "ignored_columns": [c for c in header if c not in ("video_id", "clip_id", "text", "label", "mode",
                                                           "annotation", *(_UNIMODAL_CSV if has_unimodal else ()))],
    }
    _log_report(path.name, metadata)
    return dataset, metadata


# --------------------------------------------------------------------------------------------------------------
# Dataset card, summary, saving and publishing
# --------------------------------------------------------------------------------------------------------------

_EXTRACTOR_NOTES = {
    ("mosi", "audio", 5): "COVAREP, the 5 of 74 dimensions [1, 3, 6, 25, 60] kept by MMSA",
    ("mosi", "audio", 74): "COVAREP (74-d)",
    ("mosi", "vision", 20): "FACET 4.1, 20 dimensions [0, 2, 5, 10, 11, 12, 14, 17, 20, 21, 22, 24, 25, 29, 30, "
                            "31, 32, 36, 37, 40] (CMU-MultimodalSDK issue #172)",
    ("mosi", "vision", 47): "FACET 4.1 (47-d)",
    ("mosi", "vision", 35): "FACET 4.2 (35-d)",
    ("mosi", "text_features", 300): "GloVe 840B word vectors (300-d)",
    ("mosei", "audio", 74): "COVAREP (74-d)",
    ("mosei", "vision", 35): "FACET 4.2 (35-d)",
    ("mosei", "text_features", 300): "GloVe 840B word vectors (300-d)",
    ("sims", "audio", 33): "librosa: 1 zero-crossing rate + 20 MFCC + 12 CQT chroma (hop 512)",
    ("sims", "vision", 709): "OpenFace 2 frame features averaged over 3 frames",
    ("simsv2", "audio", 25): "ch-sims-v2 acoustic extractor (25-d)",
    ("simsv2", "vision", 177): "ch-sims-v2 visual extractor (177-d)",
}


def _extractor_note(name: str, modality: str, dim: int) -> str:
    return _EXTRACTOR_NOTES.get((name, modality, dim), f"{dim}-d (no extractor note known for this width)")


def dataset_card(metadata: dict[str, Any]) -> str:
    """Markdown card (with YAML front matter) describing a converted dataset from its metadata."""
    name = metadata.get("dataset", "unknown")
    aligned = metadata.get("aligned")
    layout = "word-aligned" if aligned else ("unaligned" if aligned is False else "text only")
    pretty = f"{name.upper()} ({metadata.get('format')}, {layout})"
    lines = [
        "---",
        f"pretty_name: {json.dumps(pretty)}",
        "license: other",
        "tags:",
        "- multimodal-sentiment-analysis",
        f"- {name}",
        "---",
        "",
        f"# {pretty}",
        "",
        "Converted with `modeling.converters` into the shared schema of `modeling.features`: one row per "
        "utterance, features trimmed to their true length (`Array2D((None, D), float32)`) with `*_lengths` "
        "columns, `input_ids` = BERT ids incl. [CLS]/[SEP] without padding.",
        "",
        f"- modalities: {', '.join(metadata.get('modalities', []))}",
        f"- text: {metadata.get('text_source', '')}",
        f"- metric scale: `{metadata.get('scale')}`",
        "",
        "## Splits",
        "",
        "| split | rows |",
        "| --- | --- |",
    ]
    lines += [f"| {split} | {size} |" for split, size in metadata.get("split_sizes", {}).items()]
    dims = metadata.get("feature_dims") or {}
    padded = metadata.get("padded_lengths") or {}
    lines += ["", "## Features", "", "| modality | dim | padded length in source | extractor |",
              "| --- | --- | --- | --- |"]
    for modality, dim in dims.items():
        source_len = padded.get("text" if modality == "text_features" else modality, "–")
        lines.append(f"| {modality} | {dim} | {source_len} | {_extractor_note(name, modality, dim)} |")
    if "text" in padded:
        lines.append(f"| text (input_ids) | – | {padded['text']} | BERT WordPiece ids |")
    elif metadata.get("max_length"):
        lines.append(f"| text (input_ids) | – | tokenised here, at most {metadata['max_length']} ids | "
                     "BERT WordPiece ids |")
    lines += ["", "## True sequence lengths", "", "| split | modality | min | mean | max |",
              "| --- | --- | --- | --- | --- |"]
    for split, per_modality in metadata.get("length_stats", {}).items():
        for modality, s in per_modality.items():
            lines.append(f"| {split} | {modality} | {s['min']} | {s['mean']} | {s['max']} |")
    lines += [
        "",
        "## Conversion report",
        "",
        f"- non-finite values (±inf/NaN) replaced by 0: {metadata.get('nonfinite_replaced_total', 0)} "
        f"{json.dumps(metadata.get('nonfinite_replaced', {}))}",
        f"- lengths clamped to [1, padded length] (or empty sequences given one zero row): "
        f"{metadata.get('lengths_clamped_total', 0)} {json.dumps(metadata.get('lengths_clamped', {}))}",
    ]
    for key in ("label_csv_join", "videos_without_fold", "videos_missing", "words_without_frames", "ignored_keys"):
        if metadata.get(key):
            lines.append(f"- {key.replace('_', ' ')}: {json.dumps(metadata[key])}")
    lines += ["", "## Source files", "", "| file | role | SHA-256 |", "| --- | --- | --- |"]
    for entry in metadata.get("source_files", []):
        lines.append(f"| {entry['name']} | {entry.get('role', 'source')} | `{entry['sha256']}` |")
    lines += [
        "",
        "## Licence",
        "",
        "The original features, transcripts and labels belong to their authors (CMU MultiComp Lab for "
        "CMU-MOSI/MOSEI, THUIAR for CH-SIMS/SIMS-v2) and are distributed under their terms: obtain them from the "
        "authors and check their licence before redistributing this converted copy. No licence is granted here.",
        "",
    ]
    return "\n".join(lines)


def conversion_summary(metadata: dict[str, Any]) -> str:
    """A few lines for the console: split sizes, dims, replaced non-finite values, clamped lengths."""
    sizes = ", ".join(f"{k} {v}" for k, v in metadata.get("split_sizes", {}).items())
    dims = ", ".join(f"{k} {v}" for k, v in (metadata.get("feature_dims") or {}).items()) or "text only"
    lines = [
        f"{metadata.get('dataset_name')} ({metadata.get('format')}, aligned={metadata.get('aligned')})",
        f"splits: {sizes}",
        f"dims: {dims}",
        f"non-finite values replaced: {metadata.get('nonfinite_replaced_total', 0)}",
        f"lengths clamped: {metadata.get('lengths_clamped_total', 0)}",
    ]
    if "label_csv_join" in metadata:
        lines.append(f"label.csv join: {metadata['label_csv_join']}")
    return "\n".join(lines)


def merge_card_text(hub_card: str | None, card: str, config_name: str) -> str:
    """Merge our card into the README that ``push_to_hub`` wrote: keep its YAML (configs, dataset_info),
    add our YAML keys, and put our body in a section per config (replacing an older one of the same name)."""
    ours = DatasetCard(card)
    data = DatasetCard(hub_card).data.to_dict() if hub_card else {}
    for key, value in ours.data.to_dict().items():
        data.setdefault(key, value)
    body = DatasetCard(hub_card).text if hub_card else ""
    start, end = f"<!-- msa-config:{config_name} -->", f"<!-- /msa-config:{config_name} -->"
    section = f"{start}\n{ours.text.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    body = pattern.sub(lambda _: section, body) if pattern.search(body) else f"{body.rstrip()}\n\n{section}\n"
    return f"---\n{DatasetCardData(**data).to_yaml()}\n---\n{body.lstrip()}"


def push_dataset_to_hub(
    dataset: DatasetDict,
    metadata: dict[str, Any],
    repo_id: str,
    config_name: str = "default",
    card: str | None = None,
    private: bool | None = None,
) -> None:
    """Upload as parquet (``DatasetDict.push_to_hub``), then the card and ``msa_metadata/<config>.json``."""
    write_metadata(dataset, metadata)
    dataset.push_to_hub(repo_id, config_name=config_name, private=private)
    HfApi().upload_file(
        path_or_fileobj=json.dumps(metadata, indent=2, sort_keys=True).encode(),
        path_in_repo=f"msa_metadata/{config_name}.json",
        repo_id=repo_id,
        repo_type="dataset",
    )
    if card is not None:
        hub_text = DatasetCard.load(repo_id, repo_type="dataset").content
        DatasetCard(merge_card_text(hub_text, card, config_name)).push_to_hub(repo_id, repo_type="dataset")


def _pushable_repo_id(value: str) -> str:
    """argparse type of ``--push-to-hub``: an ``org/name`` id, checked before the conversion starts."""
    import argparse

    from .hub import check_can_push

    try:
        check_can_push(value)
    except (ValueError, OSError) as err:  # a bad id, or HF_HUB_OFFLINE (OfflineModeIsEnabled)
        raise argparse.ArgumentTypeError(str(err)) from None
    return value


def add_output_arguments(parser) -> None:
    """Arguments shared by the ``datasets_scripts/convert_*.py`` command-line tools."""
    parser.add_argument("--output", required=True, help="output folder (save_to_disk layout + README + metadata)")
    parser.add_argument("--dataset", default=None, help="dataset name (mosi/mosei/sims/simsv2); guessed if omitted")
    parser.add_argument("--push-to-hub", default=None, metavar="ORG/NAME", type=_pushable_repo_id,
                        help="also upload to this Hub dataset repo (HF_ENDPOINT selects another Hub or a mirror)")
    parser.add_argument("--config-name", default="default", help="Hub config name (e.g. aligned_50)")
    parser.add_argument("--private", action="store_true", help="create the Hub repo as private")


def finish_cli(dataset: DatasetDict, metadata: dict[str, Any], args) -> None:
    """Save to ``args.output``, print the summary and push when ``--push-to-hub`` was given."""
    card = dataset_card(metadata)
    save_msa_dataset(dataset, args.output, metadata, card)
    print(conversion_summary(metadata))
    print(f"saved to {args.output} (+ README.md, {METADATA_FILE})")
    if args.push_to_hub:
        push_dataset_to_hub(dataset, metadata, args.push_to_hub, args.config_name, card, args.private or None)
        print(f"pushed to {args.push_to_hub} (config {args.config_name})")
