"""The on-disk schema shared by every converter, the synthetic generator and the collator.

One row is one utterance. Feature sequences are stored **trimmed to their true length** as
``Array2D((None, D), "float32")`` (the fast, shape-keeping layout; see ``hf_ecosystem.md`` §3.2) and the
collator pads each batch to its own longest sequence. ``*_lengths`` repeat the true lengths explicitly
so that statistics and filters do not have to decode arrays.

Columns (``labels_*`` and ``annotation`` only when the source has them; ``factor_*`` only in the
synthetic set):

==================  ===========================================  ==========================================
column              type                                         meaning
==================  ===========================================  ==========================================
``id``              string                                       source id, e.g. ``03bSnISJMiM$_$11``
``video_id``        string                                       video part of the id
``clip_id``         string                                       clip part (kept as a string: SIMS ``0001``)
``text``            string                                       raw transcript ("" when unknown)
``input_ids``       List(int32)                                  BERT ids incl. [CLS]/[SEP], no padding
``audio``           Array2D((None, D_a), float32)                acoustic frames (or word-aligned vectors)
``audio_lengths``   int32                                        number of rows of ``audio``
``vision``          Array2D((None, D_v), float32)                visual frames
``vision_lengths``  int32                                        number of rows of ``vision``
``labels``          float32 (regression) / int64 (classes)       the target
``labels_text`` …   float32                                      unimodal labels (SIMS / SIMS-v2)
``annotation``      string                                       Negative / Neutral / Positive
==================  ===========================================  ==========================================

Dataset-level facts (padded lengths of the source, aligned or not, metric scale, source files and their
SHA-256) live in a JSON document stored in ``Dataset.info.description`` (see :func:`write_metadata`), so
they travel with ``save_to_disk``/``load_from_disk`` and the Hub.
"""

from __future__ import annotations

import json
from typing import Any

from datasets import Array2D, Dataset, DatasetDict, Features, List, Value

MODALITIES = ("text", "audio", "vision")
SPLITS = ("train", "validation", "test")
METADATA_KEY = "msa_metadata"


def msa_features(
    audio_dim: int,
    vision_dim: int,
    classification: bool = False,
    unimodal_labels: bool = False,
    annotation: bool = False,
    extra: dict[str, Any] | None = None,
) -> Features:
    """Build the ``datasets.Features`` of an MSA split with the given acoustic/visual widths."""
    spec: dict[str, Any] = {
        "id": Value("string"),
        "video_id": Value("string"),
        "clip_id": Value("string"),
        "text": Value("string"),
        "input_ids": List(Value("int32")),
        "audio": Array2D(shape=(None, int(audio_dim)), dtype="float32"),
        "audio_lengths": Value("int32"),
        "vision": Array2D(shape=(None, int(vision_dim)), dtype="float32"),
        "vision_lengths": Value("int32"),
        "labels": Value("int64") if classification else Value("float32"),
    }
    if unimodal_labels:
        for m in MODALITIES:
            spec[f"labels_{m}"] = Value("float32")
    if annotation:
        spec["annotation"] = Value("string")
    if extra:
        spec.update(extra)
    return Features(spec)


def write_metadata(dataset: Dataset | DatasetDict, metadata: dict[str, Any]) -> None:
    """Store dataset-level facts (JSON) in ``info.description`` of every split."""
    text = json.dumps({METADATA_KEY: metadata}, sort_keys=True)
    splits = dataset.values() if isinstance(dataset, DatasetDict) else [dataset]
    for split in splits:
        split.info.description = text


def read_metadata(dataset: Dataset | DatasetDict) -> dict[str, Any]:
    """Return the facts written by :func:`write_metadata` (empty dict when there are none)."""
    split = next(iter(dataset.values())) if isinstance(dataset, DatasetDict) else dataset
    try:
        return json.loads(split.info.description or "{}").get(METADATA_KEY, {})
    except (json.JSONDecodeError, AttributeError):
        return {}


def feature_dims(dataset: Dataset | DatasetDict) -> dict[str, int]:
    """Acoustic and visual widths, read from the schema (never from a config)."""
    split = next(iter(dataset.values())) if isinstance(dataset, DatasetDict) else dataset
    return {m: int(split.features[m].shape[1]) for m in ("audio", "vision") if m in split.features}


METADATA_FILE = "msa_metadata.json"


def save_msa_dataset(dataset: DatasetDict, folder: str, metadata: dict[str, Any], card: str | None = None) -> None:
    """Save a converted ``DatasetDict`` so that both ``load_from_disk`` and ``load_dataset`` read it.

    The metadata goes into ``info.description`` and, because ``load_dataset(folder)`` does not keep
    ``info``, into ``msa_metadata.json`` beside the data; ``card`` (Markdown) becomes ``README.md``.
    """
    import os

    write_metadata(dataset, metadata)
    dataset.save_to_disk(folder)
    with open(os.path.join(folder, METADATA_FILE), "w") as fh:
        json.dump(metadata, fh, indent=2, sort_keys=True)
    if card is not None:
        with open(os.path.join(folder, "README.md"), "w") as fh:
            fh.write(card)


def load_msa_dataset(path: str, name: str | None = None) -> tuple[DatasetDict, dict[str, Any]]:
    """Load a dataset saved by :func:`save_msa_dataset` (a folder) or a Hub dataset id; return it with its metadata."""
    import os

    from datasets import load_dataset, load_from_disk

    if os.path.isdir(path) and os.path.exists(os.path.join(path, "dataset_dict.json")):
        dataset = load_from_disk(path)
    else:
        dataset = load_dataset(path, name)
    metadata = read_metadata(dataset)
    sidecar = os.path.join(path, METADATA_FILE)
    if not metadata and os.path.exists(sidecar):
        with open(sidecar) as fh:
            metadata = json.load(fh)
    return dataset, metadata
