"""A MOSI-shaped synthetic MSA dataset with known latent factors, for tests, smoke runs and probes.

Why: real MOSI features cannot be redistributed, and disentanglement claims (shared vs private vs
nuisance information) can only be *measured* when the generating factors are known.

Generative process (one utterance ``i``; all factors independent standard normal scalars)::

    s                      shared sentiment factor, present in every modality
    p_text, p_audio, p_vision   task-relevant private factor of each modality
    n_text, n_audio, n_vision   task-irrelevant nuisance factor of each modality

    label = clip(round5(scale * (w_s*s + w_t*p_text + w_a*p_audio + w_v*p_vision + w_e*eps)), -3, 3)

with ``w_s² + w_t² + w_a² + w_v² + w_e² = 1`` (defaults ∝ ``(0.58, 0.56, 0.34, 0.34, 0.25)``: language
dominant, as in real MSA), ``scale = 1.6`` (label std ≈ 1.5 like MOSI's 1.57) and ``round5`` rounding to
multiples of 0.2 (MOSI scores are mostly averaged annotator votes on that grid; it also yields ~5% exact zeros).

* **Text** (``input_ids``): length ``L`` (incl. [CLS]/[SEP]) ~ round(LogNormal(log 13, 0.59)) clipped to
  [3, 80] — mean 15.5, median 13, p90 ≈ 27, ≈1% over 50 as in MOSI. Each of the ``L-2`` content tokens is,
  with probability ``informative_rate``, a *factor token*: it picks one of ``s, p_text, n_text`` and is drawn
  from that factor's vocabulary bins: the factor value plus Gaussian noise (std ``token_noise``), quantised
  into ``n_bins`` equal bins over [-2.5, 2.5] (``ids_per_bin`` token ids per bin, disjoint between factors). The
  other tokens are fillers from a Zipf-distributed pool. All ids are ordinary bert-base-uncased word ids
  (1996–29611); only [CLS]=101 first and [SEP]=102 last are special. A bag-of-embeddings model can decode
  the three text factors; short utterances are ambiguous, as in real data.
* **Audio / vision** (``audio``/``vision``, one row per frame): frame ``t`` of modality ``m`` is
  ``A_m @ [s + obs_noise*e1, p_m + obs_noise*e2, nuisance_scale*n_m] + c_m * sin(2π f t/T + φ) +
  frame_noise * e_t`` with a fixed random projection ``A_m`` (unit-norm columns, not orthogonal), a smooth
  per-utterance oscillation (random direction ``c_m``, frequency, phase) and white noise. The nuisance enters
  with a large variance (``nuisance_scale = 3``), so a model must learn to ignore it. Aligned mode: one
  vector per token position (A/V lengths = ``L``, like word-aligned MMSA data). Unaligned mode: lengths
  ≈ ``L`` × 8 (audio) / × 10 (vision) frames per token with log-normal noise, clipped to [1, 375] / [1, 500].
* The vocabulary bins and projections come from ``structure_seed`` (fixed by default), the samples from
  ``seed``: different seeds are independent draws of the *same* task.

Classification variants (``task``; the default ``"regression"`` is the MOSI-like set above, unchanged):

* ``"binary"`` (UR-FUNNY-like humour detection): ``labels`` (int64) = 1 when the noisy label score (the
  value rounded into the regression label) is positive: balanced classes, as UR-FUNNY's folds.
* ``"emotion7"`` (MELD-like emotions, MELD's ids: neutral 0, surprise 1, fear 2, sadness 3, joy 4, disgust 5,
  anger 6): a valence–arousal circumplex. Valence is the label score; arousal is a second unit-variance
  mixture of the same factors, ``∝ −0.2·s − 0.5·p_text + 0.6·p_audio + 0.6·p_vision`` plus label noise from a
  separate random stream (so labels, text and frames equal the regression set's), nearly uncorrelated with
  valence and carried mostly by audio and vision. Neutral when ``valence² + arousal² < NEUTRAL_RADIUS²``;
  otherwise the angle ``atan2(arousal, valence)`` picks a sector: surprise [5°, 87°), fear [87°, 105°),
  anger [105°, 180°), disgust [180°, 198°), sadness [198°, 244°), joy [244°, 365°). The sector widths follow
  MELD's training-set shares (neutral ≈ 47%, joy 17%, surprise 12%, anger 11%, sadness 7%, disgust and
  fear 3% each), so the classes are imbalanced as in MELD. Nuisance factors never enter a label.

Columns follow :mod:`modeling.features` plus float32 ``factor_shared``, ``factor_private_{text,audio,vision}``
and ``factor_nuisance_{text,audio,vision}``.

Fusion check (:func:`ridge_baselines`: scikit-learn ridge on pooled features — per-factor normalised
bag-of-bin histograms for text, per-utterance means for audio/vision — fit on train, scored on test;
Acc-2 = sign accuracy on non-zero labels), default MOSI-sized sets, seed 0:

=========  ============================  ============================
           aligned: MAE / Corr / Acc-2    unaligned: MAE / Corr / Acc-2
=========  ============================  ============================
text       0.768 / 0.758 / 0.782         0.768 / 0.758 / 0.782
audio      0.937 / 0.608 / 0.718         0.940 / 0.616 / 0.723
vision     0.942 / 0.612 / 0.722         0.940 / 0.619 / 0.711
all three  0.499 / 0.902 / 0.878         0.481 / 0.909 / 0.875
=========  ============================  ============================

Over seeds 0–4 (aligned) text-only Acc-2 is 0.78–0.81, audio/vision-only 0.69–0.75 and all three
0.86–0.90; labels have mean ≈ 0, std 1.51, 4.9% exact zeros and 6.9% at ±3. Labels, factors and text
are the same for a given seed in aligned and unaligned mode (only audio/vision differ).

Generating (and saving) the full MOSI-sized set takes about 0.3 s aligned / 1 s unaligned on 2 CPU cores.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from typing import Any

import numpy as np
from datasets import Dataset, DatasetDict, Value

from .features import SPLITS, load_msa_dataset, msa_features, save_msa_dataset

GENERATOR_VERSION = 1
TASKS = ("regression", "binary", "emotion7")
#: MELD's emotion ids (declare-lab/MELD), the classes of ``task="emotion7"``
EMOTIONS = ("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger")
#: weights of the arousal mixture of ``task="emotion7"`` (normalised with the label noise, as the valence ones)
AROUSAL_WEIGHTS = {"shared": -0.2, "text": -0.5, "audio": 0.6, "vision": 0.6}
#: circumplex sectors of ``task="emotion7"``: (emotion, upper edge in degrees counter-clockwise from +valence);
#: the first sector starts at the last one's edge − 360°
EMOTION_SECTORS = (("surprise", 87), ("fear", 105), ("anger", 180), ("disgust", 198), ("sadness", 244), ("joy", 365))
NEUTRAL_RADIUS = 1.13
CLS_ID, SEP_ID = 101, 102
WORD_ID_RANGE = (1996, 29612)
FACTORS = (
    "factor_shared",
    "factor_private_text",
    "factor_private_audio",
    "factor_private_vision",
    "factor_nuisance_text",
    "factor_nuisance_audio",
    "factor_nuisance_vision",
)
DEFAULT_WEIGHTS = {"shared": 0.58, "text": 0.56, "audio": 0.34, "vision": 0.34}
LABEL_SCALE = 1.6
BIN_RANGE = 2.5
FILLER_POOL = 3000
CLIPS_PER_VIDEO = 24


def vocabulary_layout(structure_seed: int = 1234, n_bins: int = 10, ids_per_bin: int = 4) -> dict[str, np.ndarray]:
    """Token ids of the factor bins, shape (3, n_bins, ids_per_bin) for (s, p_text, n_text), and the filler pool."""
    rng = np.random.default_rng(structure_seed)
    ids = rng.permutation(np.arange(*WORD_ID_RANGE, dtype=np.int32))
    n_factor_ids = 3 * n_bins * ids_per_bin
    return {
        "bins": ids[:n_factor_ids].reshape(3, n_bins, ids_per_bin),
        "filler": ids[n_factor_ids : n_factor_ids + FILLER_POOL],
    }


def _projections(structure_seed: int, audio_dim: int, vision_dim: int) -> dict[str, np.ndarray]:
    """Fixed random (D, 3) mixing matrices with unit-norm columns, one per non-verbal modality."""
    rng = np.random.default_rng([structure_seed, 1])
    out = {}
    for name, dim in (("audio", audio_dim), ("vision", vision_dim)):
        a = rng.standard_normal((dim, 3))
        out[name] = a / np.linalg.norm(a, axis=0, keepdims=True)
    return out


def _text_lengths(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.clip(np.rint(np.exp(np.log(13.0) + 0.59 * rng.standard_normal(n))), 3, 80).astype(np.int64)


def _tokens(rng, lengths, factors, layout, informative_rate, token_noise, n_bins) -> np.ndarray:
    """All utterances' token ids concatenated (vectorised over every token of the split)."""
    total = int(lengths.sum())
    starts = np.cumsum(lengths) - lengths
    owner = np.repeat(np.arange(len(lengths)), lengths)
    tokens = np.empty(total, dtype=np.int32)
    content = np.ones(total, dtype=bool)
    content[starts] = False
    content[starts + lengths - 1] = False
    tokens[starts] = CLS_ID
    tokens[starts + lengths - 1] = SEP_ID
    pos = np.flatnonzero(content)
    ranks = np.arange(1, FILLER_POOL + 1)
    zipf = 1.0 / (ranks + 10.0)
    filler = layout["filler"][rng.choice(FILLER_POOL, size=pos.size, p=zipf / zipf.sum())]
    informative = rng.random(pos.size) < informative_rate
    kind = rng.choice(3, size=pos.size, p=[0.4, 0.35, 0.25])
    value = factors[owner[pos], kind] + token_noise * rng.standard_normal(pos.size)
    bin_idx = np.clip(np.floor((value + BIN_RANGE) / (2 * BIN_RANGE) * n_bins), 0, n_bins - 1).astype(np.int64)
    word = layout["bins"][kind, bin_idx, rng.integers(0, layout["bins"].shape[2], size=pos.size)]
    tokens[pos] = np.where(informative, word, filler)
    return tokens


def _frames(rng, lengths, latent, projection, frame_noise, drift) -> np.ndarray:
    """Frames (sum(lengths), D): projected latent + smooth oscillation + white noise."""
    n, dim = len(lengths), projection.shape[0]
    owner = np.repeat(np.arange(n), lengths)
    t = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    freq = rng.uniform(0.5, 2.0, n)
    phase = rng.uniform(0, 2 * np.pi, n)
    direction = drift * rng.standard_normal((n, dim)) / np.sqrt(dim)
    wave = np.sin(2 * np.pi * freq[owner] * t / lengths[owner] + phase[owner])
    frames = latent[owner] @ projection.T + direction[owner] * wave[:, None]
    frames += frame_noise * rng.standard_normal(frames.shape)
    return frames.astype(np.float32)


def _class_labels(task: str, valence: np.ndarray, factors: np.ndarray, label_noise: float, seed: int) -> np.ndarray:
    """Integer labels of a classification ``task`` from the unit-variance label score ``valence`` (see module doc)."""
    if task == "binary":
        return (valence > 0).astype(np.int64)
    weights = np.array([AROUSAL_WEIGHTS[k] for k in ("shared", "text", "audio", "vision")] + [label_noise])
    weights = weights / np.linalg.norm(weights)
    noise = np.random.default_rng([seed, 2]).standard_normal(len(valence))
    arousal = factors[:, :4] @ weights[:4] + weights[4] * noise
    start = EMOTION_SECTORS[-1][1] - 360
    angle = (np.degrees(np.arctan2(arousal, valence)) - start) % 360 + start
    edges = np.array([edge for _, edge in EMOTION_SECTORS])
    ids = np.array([EMOTIONS.index(name) for name, _ in EMOTION_SECTORS])
    labels = ids[np.minimum(np.searchsorted(edges, angle, side="right"), len(ids) - 1)]
    return np.where(valence**2 + arousal**2 < NEUTRAL_RADIUS**2, EMOTIONS.index("neutral"), labels).astype(np.int64)


def _split_rows(flat: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    return np.split(flat, np.cumsum(lengths)[:-1])


def make_synthetic(
    seed: int = 0,
    aligned: bool = True,
    sizes: tuple[int, int, int] = (1284, 229, 686),
    audio_dim: int = 5,
    vision_dim: int = 20,
    *,
    weights: dict[str, float] | None = None,
    label_noise: float = 0.25,
    n_bins: int = 10,
    ids_per_bin: int = 4,
    informative_rate: float = 0.8,
    token_noise: float = 0.3,
    obs_noise: float = 0.35,
    nuisance_scale: float = 3.0,
    frame_noise: float = 1.0,
    drift: float = 0.5,
    structure_seed: int = 1234,
    task: str = "regression",
) -> tuple[DatasetDict, dict[str, Any]]:
    """Generate the synthetic set (train/validation/test with ``sizes`` rows); return it with its metadata.

    ``weights`` maps ``shared``/``text``/``audio``/``vision`` to label weights; they and ``label_noise``
    are rescaled so that the label score (noise included) has unit variance before ``LABEL_SCALE``.
    ``task`` is ``"regression"`` (MOSI-like scores), ``"binary"`` (UR-FUNNY-like) or ``"emotion7"``
    (MELD-like); the classification variants share everything but ``labels`` with the regression set.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    w = dict(DEFAULT_WEIGHTS if weights is None else weights)
    norm = np.sqrt(sum(v * v for v in w.values()) + label_noise**2)
    w = {k: float(v / norm) for k, v in w.items()}
    w_noise = float(label_noise / norm)

    rng = np.random.default_rng(seed)
    n = int(sum(sizes))
    f = rng.standard_normal((n, 7))
    s, p_t, p_a, p_v, n_t, n_a, n_v = f.T
    score = w["shared"] * s + w["text"] * p_t + w["audio"] * p_a + w["vision"] * p_v
    score = score + w_noise * rng.standard_normal(n)
    labels = np.clip(np.rint(LABEL_SCALE * score * 5) / 5, -3, 3).astype(np.float32)
    if task != "regression":
        labels = _class_labels(task, score, f, w_noise, seed)

    layout = vocabulary_layout(structure_seed, n_bins, ids_per_bin)
    proj = _projections(structure_seed, audio_dim, vision_dim)
    text_len = _text_lengths(rng, n)
    tokens = _tokens(rng, text_len, np.stack([s, p_t, n_t], 1), layout, informative_rate, token_noise, n_bins)

    lengths, frames = {}, {}
    for name, private, nuisance, rate, cap in (("audio", p_a, n_a, 8.0, 375), ("vision", p_v, n_v, 10.0, 500)):
        if aligned:
            lengths[name] = text_len.copy()
        else:
            raw = text_len * rate * np.exp(0.25 * rng.standard_normal(n))
            lengths[name] = np.clip(np.rint(raw), 1, cap).astype(np.int64)
        noise = obs_noise * rng.standard_normal((n, 2))
        latent = np.stack([s + noise[:, 0], private + noise[:, 1], nuisance_scale * nuisance], 1)
        frames[name] = _frames(rng, lengths[name], latent, proj[name], frame_noise, drift)

    columns = {
        "input_ids": _split_rows(tokens, text_len),
        "audio": _split_rows(frames["audio"], lengths["audio"]),
        "audio_lengths": lengths["audio"].astype(np.int32),
        "vision": _split_rows(frames["vision"], lengths["vision"]),
        "vision_lengths": lengths["vision"].astype(np.int32),
        "labels": labels,
    }
    columns.update({name: f[:, k].astype(np.float32) for k, name in enumerate(FACTORS)})

    features = msa_features(
        audio_dim, vision_dim, classification=task != "regression", extra={name: Value("float32") for name in FACTORS}
    )
    bounds = np.cumsum([0, *sizes])
    splits = {}
    for split, lo, hi in zip(SPLITS, bounds[:-1], bounds[1:]):
        video = [f"synth_{split}_{k // CLIPS_PER_VIDEO:03d}" for k in range(hi - lo)]
        clip = [str(k % CLIPS_PER_VIDEO + 1) for k in range(hi - lo)]
        data = {
            "id": [f"{v}$_${c}" for v, c in zip(video, clip)],
            "video_id": video,
            "clip_id": clip,
            "text": [""] * (hi - lo),
        }
        data.update({key: value[lo:hi] for key, value in columns.items()})
        splits[split] = Dataset.from_dict({k: data[k] for k in features}, features=features)

    metadata = {
        "dataset": "synthetic",
        "aligned": bool(aligned),
        "seed": int(seed),
        "scale": "mosi",
        "padded_lengths": {"text": 50, "audio": 50 if aligned else 375, "vision": 50 if aligned else 500},
        "feature_dims": {"audio": int(audio_dim), "vision": int(vision_dim)},
        "factors": list(FACTORS),
        "generator": {
            "weights": w,
            "label_noise": w_noise,
            "label_scale": LABEL_SCALE,
            "n_bins": n_bins,
            "ids_per_bin": ids_per_bin,
            "bin_range": BIN_RANGE,
            "bin_token_ids": layout["bins"].tolist(),
            "informative_rate": informative_rate,
            "token_noise": token_noise,
            "obs_noise": obs_noise,
            "nuisance_scale": nuisance_scale,
            "frame_noise": frame_noise,
            "drift": drift,
            "structure_seed": structure_seed,
            "version": GENERATOR_VERSION,
            "sizes": [int(x) for x in sizes],
        },
    }
    if task != "regression":
        metadata["scale"] = "classification"
        metadata["task"] = task
        metadata["classes"] = ["no humour", "humour"] if task == "binary" else list(EMOTIONS)
    return DatasetDict(splits), metadata


def load_or_make_synthetic(cache_dir: str, **kwargs: Any) -> tuple[DatasetDict, dict[str, Any]]:
    """Return :func:`make_synthetic` ``(**kwargs)``, cached under ``cache_dir`` in a folder keyed by the arguments.

    The key covers every argument after defaults are filled in (so ``seed=0`` and no seed share a folder)
    and :data:`GENERATOR_VERSION`; ``task`` only when it is not the default, so regression sets keep the
    folders they had before the option existed.
    """
    bound = inspect.signature(make_synthetic).bind(**kwargs)
    bound.apply_defaults()
    key_args = {"version": GENERATOR_VERSION, **bound.arguments}
    if key_args["task"] == "regression":
        del key_args["task"]
    key = hashlib.sha256(json.dumps(key_args, sort_keys=True, default=str).encode()).hexdigest()[:16]
    folder = os.path.join(cache_dir, f"synthetic-{key}")
    if os.path.exists(os.path.join(folder, "dataset_dict.json")):
        return load_msa_dataset(folder)
    dataset, metadata = make_synthetic(**kwargs)
    tmp = f"{folder}.tmp{os.getpid()}"
    save_msa_dataset(dataset, tmp, metadata)
    try:
        os.replace(tmp, folder)
    except OSError:  # another process (e.g. a second rank) finished the same folder first
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return load_msa_dataset(folder)


def _text_bin_features(input_ids: list, bins: np.ndarray) -> np.ndarray:
    """Per-factor normalised histograms of the factor bins present in each utterance, (N, 3*n_bins)."""
    n_kind, n_bins, _ = bins.shape
    lookup = np.full(WORD_ID_RANGE[1], -1, dtype=np.int64)
    lookup[bins.reshape(-1)] = np.arange(bins.size) // bins.shape[2]
    lengths = np.array([len(x) for x in input_ids])
    flat = lookup[np.concatenate([np.asarray(x, dtype=np.int64) for x in input_ids])]
    owner = np.repeat(np.arange(len(input_ids)), lengths)
    keep = flat >= 0
    counts = np.zeros((len(input_ids), n_kind * n_bins))
    np.add.at(counts, (owner[keep], flat[keep]), 1.0)
    counts = counts.reshape(-1, n_kind, n_bins)
    return (counts / np.maximum(counts.sum(-1, keepdims=True), 1)).reshape(len(input_ids), -1)


def _pooled(split: Dataset, bins: np.ndarray) -> dict[str, np.ndarray]:
    numpy_split = split.with_format("numpy", columns=["audio", "vision"])[:]
    return {
        "text": _text_bin_features(split["input_ids"][:], bins),
        "audio": np.stack([x.mean(0) for x in numpy_split["audio"]]),
        "vision": np.stack([x.mean(0) for x in numpy_split["vision"]]),
    }


def ridge_baselines(dataset: DatasetDict, metadata: dict[str, Any], alpha: float = 1.0) -> dict[str, dict[str, float]]:
    """Fit ridge regressions on train (text / audio / vision / all three pooled features), score on test.

    Returns ``{name: {"mae", "corr", "acc2"}}``; ``acc2`` is the sign accuracy on non-zero test labels.
    """
    if metadata.get("scale") == "classification":
        raise ValueError("ridge_baselines needs the regression set (task='regression')")
    from sklearn.linear_model import Ridge

    bins = np.asarray(metadata["generator"]["bin_token_ids"])
    train, test = _pooled(dataset["train"], bins), _pooled(dataset["test"], bins)
    y_train = np.asarray(dataset["train"]["labels"][:], dtype=np.float64)
    y_test = np.asarray(dataset["test"]["labels"][:], dtype=np.float64)
    groups = {"text": ["text"], "audio": ["audio"], "vision": ["vision"], "all": ["text", "audio", "vision"]}
    results = {}
    for name, mods in groups.items():
        model = Ridge(alpha=alpha).fit(np.hstack([train[m] for m in mods]), y_train)
        pred = model.predict(np.hstack([test[m] for m in mods]))
        nonzero = y_test != 0
        results[name] = {
            "mae": float(np.mean(np.abs(pred - y_test))),
            "corr": float(np.corrcoef(pred, y_test)[0, 1]),
            "acc2": float(np.mean((pred[nonzero] > 0) == (y_test[nonzero] > 0))),
        }
    return results
