"""Batching for MSA datasets: the padding collator, MMSA-style missing-modality corruption, dataloaders.

* :class:`MSACollator` turns rows of the :mod:`modeling.features` schema (or MMSA ``text_bert`` rows) into
  padded tensors, padding each batch only to its own longest sequence.
* :class:`MissingModality` reproduces MMSA's ``data_missing`` corruption (intra-modal token/frame
  missingness + optional whole-modality drops), either as random training augmentation or as a fixed,
  per-sample deterministic corruption for evaluation.
* :func:`build_dataloaders` builds seeded train / unshuffled eval ``DataLoader``s, optionally grouping
  training batches by text length to cut padding.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from .features import MODALITIES

UNK_ID, SEP_ID = 100, 102
_TEXT_KEYS = ("input_ids", "text_bert", "attention_mask", "token_type_ids", "text_missing_mask")


def _numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _check_finite(key: str, array: np.ndarray) -> None:
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ValueError(f"non-finite values in '{key}'")


def _pad_rows(rows: Sequence[np.ndarray], lengths: np.ndarray, width: int, dtype, fill=0) -> np.ndarray:
    """Copy the first ``lengths[i]`` entries of each row into a preallocated ``(B, width, ...)`` array."""
    tail = next((r.shape[1:] for r in rows if r.ndim > 1), ())
    out = np.full((len(rows), width, *tail), fill, dtype=dtype)
    for i, (row, n) in enumerate(zip(rows, lengths)):
        out[i, :n] = row[:n]
    return out


class MSACollator:
    """Pad a list of MSA examples into a batch of tensors.

    Accepts rows as plain Python objects, numpy arrays or torch tensors (``dataset.with_format("torch")``
    or ``"numpy"``). Returns (keys present only when their modality is present and not dropped):

    * ``input_ids``, ``attention_mask``, ``token_type_ids``: (B, L) long; padded with ``pad_token_id``.
      An MMSA ``text_bert`` (3, L) row (ids, mask, type ids; any numeric dtype) is unpacked and trimmed by
      its mask. Text truncated to ``max_text_length`` keeps [SEP] as its last token.
    * ``audio``/``vision``: (B, T, D) float32 zero-padded; ``audio_lengths``/``vision_lengths``: (B,) long,
      from the ``*_lengths`` column (else the number of rows), clipped to ``max_*_length``.
    * ``{text,audio,vision}_missing_mask`` columns (from :meth:`MissingModality.apply_to_example`) are
      padded like their modality, as (B, L|T) long.
    * ``labels``: float32 for float labels, long for integer labels; every other numeric column whose
      values share one shape (``labels_text``, ``factor_*``, ``index``...) is stacked the same way.
      String columns are dropped.

    Each batch is padded to its own longest sequence, or to the ``max_*_length`` values when
    ``pad_to_max_length`` is set (models with fixed-length layers). A modality whose column is missing
    from the examples or listed in ``drop_modalities`` is left out (the model then receives ``None``).
    Non-finite values raise ``ValueError`` naming the key, as do lengths beyond an array's rows.
    """

    def __init__(
        self,
        max_text_length: int | None = None,
        max_audio_length: int | None = None,
        max_vision_length: int | None = None,
        pad_to_max_length: bool = False,
        drop_modalities: Sequence[str] = (),
        pad_token_id: int = 0,
        sep_token_id: int = SEP_ID,
    ):
        unknown = set(drop_modalities) - set(MODALITIES)
        if unknown:
            raise ValueError(f"unknown modalities in drop_modalities: {sorted(unknown)}")
        self.max_lengths = {"text": max_text_length, "audio": max_audio_length, "vision": max_vision_length}
        self.pad_to_max_length = pad_to_max_length
        self.drop_modalities = tuple(drop_modalities)
        self.pad_token_id = pad_token_id
        self.sep_token_id = sep_token_id

    def _width(self, modality: str, lengths: np.ndarray) -> int:
        limit = self.max_lengths[modality]
        if self.pad_to_max_length and limit:
            return int(limit)
        return max(int(lengths.max(initial=0)), 1)

    def _text(self, examples: list[Mapping[str, Any]], keys) -> dict[str, torch.Tensor]:
        ids, masks = [], []
        for ex in examples:
            if "input_ids" in keys:
                row = _numpy(ex["input_ids"]).reshape(-1)
                if "attention_mask" in keys:
                    row = row[: int(_numpy(ex["attention_mask"]).sum())]
            else:
                packed = _numpy(ex["text_bert"])
                if packed.ndim != 2 or packed.shape[0] != 3:
                    raise ValueError(f"'text_bert' must have shape (3, L), got {packed.shape}")
                if not np.isfinite(packed).all():
                    raise ValueError("non-finite values in 'text_bert'")
                row = np.rint(packed[0, : int(round(float(packed[1].sum())))])
            ids.append(row.astype(np.int64))
            if "text_missing_mask" in keys:
                masks.append(_numpy(ex["text_missing_mask"]).reshape(-1).astype(np.int64))
        lengths = np.array([len(r) for r in ids], dtype=np.int64)
        limit = self.max_lengths["text"]
        if limit:
            keep_last = [len(r) > 0 and r[-1] == self.sep_token_id for r in ids]
            for rows in (ids, masks):
                for i, row in enumerate(rows):
                    if len(row) > limit:
                        rows[i] = np.concatenate([row[: limit - 1], row[-1:]]) if keep_last[i] else row[:limit]
            lengths = np.minimum(lengths, limit)
        width = self._width("text", lengths)
        input_ids = torch.from_numpy(_pad_rows(ids, lengths, width, np.int64, self.pad_token_id))
        attention = (torch.arange(width)[None, :] < torch.from_numpy(lengths)[:, None]).long()
        out = {"input_ids": input_ids, "attention_mask": attention, "token_type_ids": torch.zeros_like(input_ids)}
        if masks:
            out["text_missing_mask"] = torch.from_numpy(_pad_rows(masks, lengths, width, np.int64))
        return out

    def _sequence(self, modality: str, examples: list[Mapping[str, Any]], keys) -> dict[str, torch.Tensor]:
        rows = [_numpy(ex[modality]) for ex in examples]
        dim = next((r.shape[-1] for r in rows if r.ndim == 2), None)
        if dim is None:
            raise ValueError(f"'{modality}' rows must be 2-D (T, D)")
        rows = [r.reshape(-1, dim) if r.size == 0 else r for r in rows]
        for r in rows:
            if r.ndim != 2 or r.shape[1] != dim:
                raise ValueError(f"'{modality}' rows must all be (T, {dim}), got {r.shape}")
        n_rows = np.array([r.shape[0] for r in rows], dtype=np.int64)
        length_key = f"{modality}_lengths"
        if length_key in keys:
            lengths = np.array([int(_numpy(ex[length_key])) for ex in examples], dtype=np.int64)
            bad = (lengths > n_rows) | (lengths < 0)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"'{length_key}' = {lengths[i]} outside [0, {n_rows[i]}] rows of '{modality}' (example {i})"
                )
        else:
            lengths = n_rows
        if self.max_lengths[modality]:
            lengths = np.minimum(lengths, self.max_lengths[modality])
        width = self._width(modality, lengths)
        values = _pad_rows(rows, lengths, width, np.float32)
        _check_finite(modality, values)
        out = {modality: torch.from_numpy(values), length_key: torch.from_numpy(lengths)}
        mask_key = f"{modality}_missing_mask"
        if mask_key in keys:
            masks = [_numpy(ex[mask_key]).reshape(-1) for ex in examples]
            out[mask_key] = torch.from_numpy(_pad_rows(masks, lengths, width, np.int64))
        return out

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        examples = list(examples)
        if not examples:
            raise ValueError("cannot collate an empty list of examples")
        keys = set(examples[0].keys())
        batch: dict[str, torch.Tensor] = {}
        handled = set(_TEXT_KEYS)
        if "text" not in self.drop_modalities and ("input_ids" in keys or "text_bert" in keys):
            batch.update(self._text(examples, keys))
        for modality in ("audio", "vision"):
            handled |= {modality, f"{modality}_lengths", f"{modality}_missing_mask"}
            if modality not in self.drop_modalities and modality in keys:
                batch.update(self._sequence(modality, examples, keys))
        for key in sorted(keys - handled):
            values = [ex[key] for ex in examples]
            if any(v is None or isinstance(v, (str, bytes)) for v in values):
                continue
            arrays = [_numpy(v) for v in values]
            if any(a.dtype.kind not in "biuf" or a.shape != arrays[0].shape for a in arrays):
                continue
            stacked = np.stack(arrays)
            _check_finite(key, stacked)
            batch[key] = torch.from_numpy(stacked.astype(np.float32 if stacked.dtype.kind == "f" else np.int64))
        return batch


# ------------------------------------------------------------------------------------------ missingness

_M32 = 0xFFFFFFFF
_SALT = {"text": 1, "audio": 2, "vision": 3}


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """An integer hash on int64 tensors holding 32-bit values (multipliers < 2**31 so nothing overflows)."""
    x = x & _M32
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _M32
    x = x ^ (x >> 15)
    x = (x * 0x5BD1E995) & _M32
    x = x ^ (x >> 13)
    x = (x * 0x2C1B3C6D) & _M32
    return x ^ (x >> 16)


def hashed_uniform(seed: int, salt: int, index: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
    """Uniform [0, 1) numbers that depend only on ``(seed, salt, index, position)`` (broadcast together)."""
    base = _mix32(torch.tensor(((seed & _M32) * 0x9E37 + salt * 0x85EB) & _M32, dtype=torch.int64))
    per_sample = _mix32((base + index.to(torch.int64)) & _M32)
    h = _mix32((per_sample + _mix32(position.to(torch.int64) + 0x632BE5AB)) & _M32)
    return (h >> 8).to(torch.float32) / float(1 << 24)


class MissingModality:
    """MMSA ``data_missing`` corruption: random token/frame missingness and whole-modality drops.

    ``rates`` (e.g. ``{"text": 0.3, "audio": 0.3, "vision": 0.3}``) is the intra-modal missing rate:
    text tokens become ``[UNK]`` (100) except [CLS] (first) and the last real token ([SEP]); audio/vision
    frames are zeroed by a Bernoulli mask restricted to the true length (padding is never touched).
    ``drop`` (e.g. ``{"audio": 0.5}``) is the per-sample probability of losing a whole modality (every
    frame zeroed / every token but [CLS]/[SEP] set to [UNK]). The output also holds
    ``{text,audio,vision}_missing_mask`` (long, MMSA semantics: 1 = real and observed, 0 = missing or
    padding) for each modality present.

    Training augmentation (fresh corruption every step, vectorised on the collated batch)::

        augment = MissingModality(rates={"text": 0.3, "audio": 0.3, "vision": 0.3}, drop={"audio": 0.2})
        generator = torch.Generator().manual_seed(seed)
        batch = augment.apply_to_batch(batch, generator=generator)

    Evaluation (the same corruption of every sample for every method, whatever the batch size or order):
    randomness comes from a hash of ``(seed, sample index, modality, position)``. Either add an index
    column and pass it on the collated batch::

        test = dataset["test"].add_column("index", list(range(len(dataset["test"]))))
        batch = MissingModality(rates, seed=1111).apply_to_batch(batch)  # uses batch["index"]

    or corrupt the split once with ``dataset.map`` (the collator pads the ``*_missing_mask`` columns)::

        test = MissingModality(rates, seed=1111).map_dataset(dataset["test"])
        # same as dataset["test"].map(transform.apply_to_example, with_indices=True, features=...)

    Both routes give identical corruptions unless the collator truncates the text.
    """

    def __init__(
        self,
        rates: Mapping[str, float] | None = None,
        drop: Mapping[str, float] | None = None,
        seed: int = 1111,
        unk_token_id: int = UNK_ID,
    ):
        for name, table in (("rates", rates or {}), ("drop", drop or {})):
            for modality, p in table.items():
                if modality not in MODALITIES:
                    raise ValueError(f"unknown modality {modality!r} in {name}")
                if not 0.0 <= float(p) <= 1.0:
                    raise ValueError(f"{name}[{modality!r}] = {p} is not a probability")
        self.rates = {m: float((rates or {}).get(m, 0.0)) for m in MODALITIES}
        self.drop = {m: float((drop or {}).get(m, 0.0)) for m in MODALITIES}
        self.seed = int(seed)
        self.unk_token_id = unk_token_id
        self._generator = torch.Generator().manual_seed(self.seed)

    def _uniform(self, modality, shape, device, generator, index, purpose: int) -> torch.Tensor:
        if index is not None:
            position = torch.arange(shape[1]) if len(shape) > 1 else torch.full((1,), -1 - purpose)
            u = hashed_uniform(self.seed, _SALT[modality] + 16 * purpose, index.cpu()[:, None], position[None, :])
            return u.reshape(shape).to(device)
        return torch.rand(shape, generator=generator, device=generator.device).to(device)

    def apply_to_batch(
        self,
        batch: Mapping[str, torch.Tensor],
        generator: torch.Generator | None = None,
        index: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Return a corrupted copy of a collated batch (inputs are not modified in place).

        With ``generator``: random (training). Otherwise with ``index`` or a ``batch["index"]`` column:
        deterministic per sample (evaluation). Otherwise the transform's own generator seeded with ``seed``.
        """
        out = dict(batch)
        if generator is None and index is None:
            index = batch.get("index")
            if index is None:
                generator = self._generator
        index = None if generator is not None else torch.as_tensor(index).reshape(-1)
        if "input_ids" in batch:
            ids = batch["input_ids"]
            bsz, width = ids.shape
            mask = batch.get("attention_mask")
            real = mask.bool() if mask is not None else torch.ones_like(ids, dtype=torch.bool)
            lengths = real.sum(1, keepdim=True)
            pos = torch.arange(width, device=ids.device)[None, :]
            eligible = real & (pos >= 1) & (pos < lengths - 1)
            missing = self._missing("text", (bsz, width), eligible, ids.device, generator, index)
            out["input_ids"] = ids.masked_fill(missing, self.unk_token_id)
            out["text_missing_mask"] = (real & ~missing).long()
        for modality in ("audio", "vision"):
            if modality not in batch:
                continue
            x = batch[modality]
            bsz, width = x.shape[:2]
            length_key = f"{modality}_lengths"
            lengths = batch[length_key] if length_key in batch else torch.full((bsz,), width, device=x.device)
            real = torch.arange(width, device=x.device)[None, :] < lengths.to(x.device)[:, None]
            missing = self._missing(modality, (bsz, width), real, x.device, generator, index)
            out[modality] = x.masked_fill(missing[..., None], 0.0)
            out[f"{modality}_missing_mask"] = (real & ~missing).long()
        return out

    __call__ = apply_to_batch

    def _missing(self, modality, shape, eligible, device, generator, index) -> torch.Tensor:
        """Boolean (B, T) positions to remove: Bernoulli(rate) or a whole-sample drop, within ``eligible``."""
        rate, drop = self.rates[modality], self.drop[modality]
        missing = torch.zeros(shape, dtype=torch.bool, device=device)
        if rate > 0:
            missing |= self._uniform(modality, shape, device, generator, index, 0) < rate
        if drop > 0:
            missing |= (self._uniform(modality, (shape[0],), device, generator, index, 1) < drop)[:, None]
        return missing & eligible

    def apply_to_example(self, example: Mapping[str, Any], idx: int) -> dict[str, Any]:
        """Corrupt one row (``dataset.map(t.apply_to_example, with_indices=True)``), seeded by ``(seed, idx)``.

        Returns the modified ``input_ids``/``audio``/``vision`` and their ``*_missing_mask`` (int8 lists).
        """
        batch: dict[str, torch.Tensor] = {}
        if "input_ids" in example:
            batch["input_ids"] = torch.as_tensor(_numpy(example["input_ids"]).astype(np.int64))[None]
        for modality in ("audio", "vision"):
            if modality in example:
                x = _numpy(example[modality]).astype(np.float32)
                batch[modality] = torch.from_numpy(x if x.ndim == 2 else x.reshape(0, 1))[None]
                n = example.get(f"{modality}_lengths", x.shape[0])
                batch[f"{modality}_lengths"] = torch.tensor([int(_numpy(n))])
        corrupted = self.apply_to_batch(batch, index=torch.tensor([idx]))
        out: dict[str, Any] = {}
        if "input_ids" in batch:
            out["input_ids"] = corrupted["input_ids"][0].numpy().astype(np.int32)
            out["text_missing_mask"] = corrupted["text_missing_mask"][0].numpy().astype(np.int8)
        for modality in ("audio", "vision"):
            if modality in batch:
                out[modality] = corrupted[modality][0].numpy()
                out[f"{modality}_missing_mask"] = corrupted[f"{modality}_missing_mask"][0].numpy().astype(np.int8)
        return out

    def map_dataset(self, dataset, **map_kwargs):
        """``dataset.map`` this transform (indices = row positions), keeping the Array2D schema."""
        from datasets import List, Value

        features = dataset.features.copy()
        for modality, column in (("text", "input_ids"), ("audio", "audio"), ("vision", "vision")):
            if column in features:
                features[f"{modality}_missing_mask"] = List(Value("int8"))
        return dataset.map(self.apply_to_example, with_indices=True, features=features, **map_kwargs)


# ------------------------------------------------------------------------------------------ loaders


def _text_lengths(dataset) -> np.ndarray:
    """Token count of every row, read from Arrow without decoding the feature arrays."""
    if "input_ids" in dataset.column_names:
        import pyarrow.compute as pc

        column = dataset.with_format("arrow").select_columns(["input_ids"])[:]["input_ids"]
        return pc.list_value_length(column).to_numpy(zero_copy_only=False).astype(np.int64)
    if "text_bert" in dataset.column_names:
        rows = dataset.with_format("numpy").select_columns(["text_bert"])[:]["text_bert"]
        return np.array([int(round(float(np.asarray(r)[1].sum()))) for r in rows], dtype=np.int64)
    raise ValueError("length_grouped=True needs an 'input_ids' or 'text_bert' column")


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Shuffled batches of similar text length: sort within random megabatches of ``50 × batch_size``.

    Each pass is seeded by ``(seed, epoch)``; the epoch advances after every pass (or via ``set_epoch``).
    """

    def __init__(
        self, lengths: np.ndarray, batch_size: int, seed: int = 0, megabatch_mult: int = 50, drop_last: bool = False
    ):
        self.lengths = torch.as_tensor(np.asarray(lengths), dtype=torch.int64)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.megabatch = self.batch_size * megabatch_mult
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        self.epoch += 1
        perm = torch.randperm(len(self.lengths), generator=g)
        batches = []
        for mega in perm.split(self.megabatch):
            order = mega[torch.argsort(self.lengths[mega], descending=True, stable=True)]
            batches.extend(order.split(self.batch_size))
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        for k in torch.randperm(len(batches), generator=g).tolist():
            yield batches[k].tolist()


def _for_loading(dataset):
    """Numpy format (Array2D fast path) over the non-string columns, unless a format is already set."""
    if dataset.format.get("type") is not None:
        return dataset
    columns = [c for c, f in dataset.features.items() if getattr(f, "dtype", None) != "string"]
    return dataset.with_format("numpy", columns=columns)


def build_dataloaders(
    dataset_dict,
    batch_size: int,
    eval_batch_size: int | None = None,
    collator: MSACollator | None = None,
    shuffle: bool = True,
    seed: int = 0,
    length_grouped: bool = False,
    num_workers: int = 0,
) -> dict[str, DataLoader]:
    """One ``DataLoader`` per split: ``train`` shuffled by a generator seeded with ``seed`` (or
    length-grouped), the other splits in order with ``eval_batch_size`` (default ``batch_size``)."""
    collator = collator or MSACollator()
    loaders = {}
    for split, dataset in dataset_dict.items():
        data = _for_loading(dataset)
        common = dict(collate_fn=collator, num_workers=num_workers)
        if split == "train" and shuffle and length_grouped:
            sampler = LengthGroupedBatchSampler(_text_lengths(dataset), batch_size, seed=seed)
            loaders[split] = DataLoader(data, batch_sampler=sampler, **common)
        elif split == "train":
            generator = torch.Generator().manual_seed(seed)
            loaders[split] = DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator, **common)
        else:
            loaders[split] = DataLoader(data, batch_size=eval_batch_size or batch_size, shuffle=False, **common)
    return loaders
