"""Generators of tiny source files in the exact published layouts (``data_and_metrics.md`` §A1/§A2), with quirks.

Each ``make_*`` function writes into a folder and returns the path(s) plus the raw objects it wrote, so tests
can compute the expected output independently of the converter.
"""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import h5py
import numpy as np

# bert-base-uncased ids that the reference quotes ("a lot of sad parts" -> 1037 2843 1997 6517 3033).
REAL_IDS = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103,
            "a": 1037, "lot": 2843, "of": 1997, "sad": 6517, "parts": 3033}
# Other words used by the fixtures get generated ids after the largest real one.
EXTRA_WORDS = ("i", "loved", "it", "this", "movie", "was", "great", "bad", "not", "really", "good", "the",
               "film", "hello", "world", "and", "fun", "boring", "plot", "acting")
CLS, SEP = 101, 102


def make_vocab_folder(folder: Path, with_config: bool = True) -> Path:
    """A WordPiece tokenizer folder (``vocab.txt`` [+ ``tokenizer_config.json``]) with bert-base-uncased special ids."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    size = max(REAL_IDS.values()) + 1
    vocab = [f"[unused{i}]" for i in range(size)]
    for token, index in REAL_IDS.items():
        vocab[index] = token
    vocab += list(EXTRA_WORDS)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    if with_config:
        (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer",
                                                                  "do_lower_case": True}))
    return folder


def word_id(word: str) -> int:
    """Id of a fixture word in :func:`make_vocab_folder`'s vocabulary."""
    if word in REAL_IDS:
        return REAL_IDS[word]
    return max(REAL_IDS.values()) + 1 + EXTRA_WORDS.index(word)


# ------------------------------------------------------------------------------------------------------------
# MMSA pickles
# ------------------------------------------------------------------------------------------------------------

SENTENCES = ["a lot of sad parts", "i loved it", "this movie was great", "bad", "not really good",
             "the film was fun", "boring plot", "hello world", "great acting and fun plot", "it was a lot of fun",
             "i loved the acting", "sad"]


def _text_bert(sentences: list[str], length: int, dtype) -> np.ndarray:
    """(N, 3, L) ids/mask/type rows, right-padded; sentences longer than L are cut after adding [SEP]."""
    out = np.zeros((len(sentences), 3, length), dtype=dtype)
    for i, sentence in enumerate(sentences):
        ids = ([CLS] + [word_id(w) for w in sentence.split()] + [SEP])[:length]
        out[i, 0, : len(ids)] = ids
        out[i, 1, : len(ids)] = 1
    return out


def _right_padded(rng, lengths, padded: int, dim: int) -> np.ndarray:
    array = np.zeros((len(lengths), padded, dim), dtype=np.float32)
    for i, n in enumerate(lengths):
        array[i, : min(n, padded)] = rng.uniform(0.5, 1.5, size=(min(n, padded), dim))
    return array


def make_mmsa_pickle(folder: Path, aligned: bool = True, name: str | None = None) -> tuple[Path, dict]:
    """MOSI-like MMSA pickle: 5/3/4 samples, L_t=8, audio 5-d, vision 20-d, with MMSA's quirks.

    Quirks: top-level ``'config'`` key, float64 ``text_bert``, a sentence cut at L_t without final [SEP]
    (train sample 2), ``$_$`` ids, ``-inf`` in audio (train 0, vision NaN in valid 1). Unaligned files hold
    ``audio_lengths`` as a python list and ``vision_lengths`` as an int array, with one length above the padded
    length (train 1) and one zero (test 0).
    """
    rng = np.random.default_rng(0)
    sizes = {"train": 5, "valid": 3, "test": 4}
    long_sentence = "it was a lot of fun and great acting"  # 9 words + 2 special > L_t = 8
    data: dict = {"config": {"extractor": "fixture", "seq_lens": [8, 10, 12]}}
    start = 0
    for split, n in sizes.items():
        sentences = SENTENCES[start: start + n]
        start += n
        if split == "train":
            sentences[2] = long_sentence
        text_bert = _text_bert(sentences, 8, np.float64)
        token_counts = text_bert[:, 1].sum(1).astype(int)
        if aligned:
            audio = _right_padded(rng, token_counts, 8, 5)
            vision = _right_padded(rng, token_counts, 8, 20)
        else:
            audio_lengths = [int(x) for x in rng.integers(2, 10, size=n)]
            vision_lengths = rng.integers(2, 12, size=n)
            if split == "train":
                audio_lengths[1] = 15
            if split == "test":
                vision_lengths[0] = 0
            audio = _right_padded(rng, audio_lengths, 10, 5)
            vision = _right_padded(rng, vision_lengths, 12, 20)
        if split == "train":
            audio[0, 0, 1] = -np.inf
            audio[0, 1, 2] = -np.inf
        if split == "valid":
            vision[1, 0, 3] = np.nan
        labels = np.round(rng.uniform(-3, 3, size=n), 1).astype(np.float32)
        split_data = {
            "raw_text": np.array([s.upper() for s in sentences], dtype=object),
            "id": np.array([f"vid{split}{i}$_${i + 1}" for i in range(n)]),
            "text": np.zeros((n, 8, 768), dtype=np.float32),
            "text_bert": text_bert,
            "audio": audio,
            "vision": vision,
            "annotations": np.array(["Negative" if v < 0 else "Neutral" if v == 0 else "Positive" for v in labels]),
            "classification_labels": np.sign(labels).astype(np.float32) + 1,
            "regression_labels": labels,
        }
        if not aligned:
            split_data["audio_lengths"] = audio_lengths
            split_data["vision_lengths"] = vision_lengths
        data[split] = split_data
    path = Path(folder) / (name or ("aligned_50.pkl" if aligned else "unaligned_50.pkl"))
    with open(path, "wb") as fh:
        pickle.dump(data, fh, protocol=4)
    return path, data


def make_sims_pickle(folder: Path) -> tuple[Path, dict]:
    """SIMS-like unaligned pickle: ids ``video_0001$_$0001``, unimodal labels, int64 text_bert, 33/709-d A/V."""
    rng = np.random.default_rng(1)
    data = {}
    for split, n in {"train": 4, "valid": 2, "test": 2}.items():
        text_bert = np.zeros((n, 3, 6), dtype=np.int64)
        for i in range(n):
            count = 3 + i % 3
            text_bert[i, 0, :count] = [CLS] + list(rng.integers(670, 7000, size=count - 2)) + [SEP]
            text_bert[i, 1, :count] = 1
        audio_lengths = rng.integers(1, 7, size=n)
        vision_lengths = rng.integers(1, 5, size=n)
        data[split] = {
            "raw_text": np.array(["我很开心"] * n),
            "id": np.array([f"video_{i + 1:04d}$_${i + 1:04d}" for i in range(n)]),
            "text_bert": text_bert,
            "audio": _right_padded(rng, audio_lengths, 7, 33),
            "vision": _right_padded(rng, vision_lengths, 5, 709),
            "audio_lengths": audio_lengths,
            "vision_lengths": vision_lengths,
            "regression_labels": (rng.integers(-5, 6, size=n) * 0.2).astype(np.float64),
            "regression_labels_T": (rng.integers(-5, 6, size=n) * 0.2),
            "regression_labels_A": (rng.integers(-5, 6, size=n) * 0.2),
            "regression_labels_V": (rng.integers(-5, 6, size=n) * 0.2),
            "annotations": np.array(["Positive"] * n),
        }
    path = Path(folder) / "sims_unaligned_39.pkl"
    with open(path, "wb") as fh:
        pickle.dump(data, fh, protocol=5)
    return path, data


# ------------------------------------------------------------------------------------------------------------
# MulT pickles
# ------------------------------------------------------------------------------------------------------------

MULT_SEGMENTS = {  # video -> [(start, end, label)] ; used by the MulT pickle and the timed label.csv
    "vidA": [(1.0, 2.5, 1.2), (2.5, 4.0, -0.6), (4.0, 6.0, 0.0)],
    "vidB": [(0.5, 1.5, 2.4), (1.5, 3.0, -2.0)],
    "vidC": [(0.0, 2.0, 0.4), (2.0, 3.0, -1.4)],
}
MULT_SPLITS = {"train": ["vidA"], "valid": ["vidB"], "test": ["vidC"]}


def _front_padded(rng, lengths, padded: int, dim: int) -> np.ndarray:
    array = np.zeros((len(lengths), padded, dim), dtype=np.float32)
    for i, n in enumerate(lengths):
        if n:
            array[i, padded - n:] = rng.uniform(0.5, 1.5, size=(n, dim))
    return array


def make_mult_pickle(folder: Path, aligned: bool = False) -> tuple[Path, dict]:
    """MulT ``mosi_data[_noalign].pkl``: front zero padding, (N, 3) byte ids, (N, 1, 1) labels, -inf in audio.

    The second train sample has all-zero text (length 0, clamped to 1). Unaligned: L = 6/9/11 for
    text/audio/vision; aligned: 6 for all.
    """
    rng = np.random.default_rng(2)
    pads = (6, 6, 6) if aligned else (6, 9, 11)
    data = {}
    for split, videos in MULT_SPLITS.items():
        segments = [(v, s, e, y) for v in videos for s, e, y in MULT_SEGMENTS[v]]
        n = len(segments)
        text_len = rng.integers(1, 7, size=n)
        if split == "train":
            text_len[1] = 0
        lengths = [text_len] * 3 if aligned else [text_len, rng.integers(1, 10, size=n), rng.integers(1, 12, size=n)]
        audio = _front_padded(rng, lengths[1], pads[1], 5)
        audio[0, -1, 0] = -np.inf
        data[split] = {
            "text": _front_padded(rng, lengths[0], pads[0], 300),
            "audio": audio,
            "vision": _front_padded(rng, lengths[2], pads[2], 20),
            "labels": np.array([y for *_, y in segments], dtype=np.float32).reshape(n, 1, 1),
            "id": np.array([[v.encode(), f"{s:.3f}".encode(), f"{e:.3f}".encode()] for v, s, e, _ in segments]),
        }
    path = Path(folder) / ("mosi_data.pkl" if aligned else "mosi_data_noalign.pkl")
    with open(path, "wb") as fh:
        pickle.dump(data, fh, protocol=4)
    return path, data


# ------------------------------------------------------------------------------------------------------------
# label.csv
# ------------------------------------------------------------------------------------------------------------

MOSI_HEADER = ["video_id", "clip_id", "text", "label", "label_T", "label_A", "label_V", "annotation", "mode"]
MOSEI_HEADER = ["video_id", "clip_id", "text", "label", "annotation", "mode", "label_T", "label_A", "label_V"]


def _annotation(label: float) -> str:
    return "Negative" if label < 0 else "Neutral" if label == 0 else "Positive"


def make_label_csv(folder: Path, layout: str = "mosi", timed: bool = False) -> tuple[Path, list[dict]]:
    """MMSA label.csv for the MulT segments (MOSI or MOSEI column order; ``timed`` adds start,end columns)."""
    header = list(MOSI_HEADER if layout == "mosi" else MOSEI_HEADER) + (["start", "end"] if timed else [])
    rows = []
    texts = iter(SENTENCES)
    for split, videos in MULT_SPLITS.items():
        for video in videos:
            for clip, (start, end, label) in enumerate(MULT_SEGMENTS[video], start=1):
                rows.append({"video_id": video, "clip_id": str(clip), "text": next(texts), "label": str(label),
                             "label_T": "", "label_A": "", "label_V": "", "annotation": _annotation(label),
                             "mode": split, "start": f"{start:.8f}", "end": f"{end:.8f}"})
    rows[0]["text"] = ""  # MOSI has segments without a transcript
    path = Path(folder) / f"label_{layout}{'_timed' if timed else ''}.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path, rows


def make_sims_label_csv(folder: Path) -> tuple[Path, list[dict]]:
    """SIMS label.csv: zero-padded ids (``video_0001``, ``0001``), unimodal labels filled."""
    rows = [
        {"video_id": "video_0001", "clip_id": "0001", "text": "我很开心", "label": "-1.0", "label_T": "-1.0",
         "label_A": "-1.0", "label_V": "-1.0", "annotation": "Negative", "mode": "train"},
        {"video_id": "video_0001", "clip_id": "0002", "text": "hello world", "label": "1.0", "label_T": "1.0",
         "label_A": "0.8", "label_V": "1.0", "annotation": "Positive", "mode": "train"},
        {"video_id": "video_0002", "clip_id": "0001", "text": "good", "label": "0.2", "label_T": "0.4",
         "label_A": "0.0", "label_V": "-0.2", "annotation": "Positive", "mode": "valid"},
        {"video_id": "video_0003", "clip_id": "0010", "text": "bad", "label": "-0.6", "label_T": "-0.6",
         "label_A": "-0.4", "label_V": "-0.8", "annotation": "Negative", "mode": "test"},
    ]
    path = Path(folder) / "sims_label.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=MOSI_HEADER)
        writer.writeheader()
        writer.writerows(rows)
    return path, rows


# ------------------------------------------------------------------------------------------------------------
# CMU-SDK .csd files
# ------------------------------------------------------------------------------------------------------------

CSD_FOLDS = {"vid_a": "train", "vid_b": "train", "vid_c": "valid", "vid_d": "test"}  # vid_e has no fold
CSD_WORDS = {  # video -> [(word, start, end)] with b'sp' pauses
    "vid_a": [("a", 0.0, 0.3), ("sp", 0.3, 0.5), ("lot", 0.5, 0.8), ("of", 0.8, 0.9), ("sad", 0.9, 1.3),
              ("parts", 1.3, 1.8), ("sp", 1.8, 2.0), ("I", 2.0, 2.2), ("LOVED", 2.2, 2.6), ("it", 2.6, 2.9)],
    "vid_b": [("this", 0.1, 0.4), ("movie", 0.4, 0.9), ("was", 0.9, 1.1), ("great", 1.1, 1.6)],
    "vid_c": [("sp", 0.0, 0.4), ("bad", 0.4, 0.8), ("not", 1.0, 1.3), ("really", 1.3, 1.7), ("good", 1.7, 2.0)],
    "vid_d": [("the", 0.0, 0.2), ("film", 0.2, 0.6), ("was", 0.6, 0.8), ("fun", 0.8, 1.2)],
    "vid_e": [("hello", 0.0, 0.5), ("world", 0.5, 1.0)],
}
CSD_SEGMENTS = {  # video -> [(start, end, label)] (stored out of time order for vid_a)
    "vid_a": [(1.9, 3.0, 2.0), (0.0, 1.9, -1.4)],
    "vid_b": [(0.0, 1.7, 1.8)],
    "vid_c": [(0.0, 0.9, -2.2), (0.9, 2.1, -0.4), (2.1, 3.0, 0.0)],  # last segment has no words
    "vid_d": [(0.0, 1.3, 0.6)],
    "vid_e": [(0.0, 1.0, 1.0)],
}


def _write_csd(path: Path, root: str, videos: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    with h5py.File(path, "w") as handle:
        group = handle.create_group(root)
        data = group.create_group("data")
        for video, (features, intervals) in videos.items():
            entry = data.create_group(video)
            entry.create_dataset("features", data=features)
            entry.create_dataset("intervals", data=intervals)
        meta = group.create_group("metadata")
        string = h5py.special_dtype(vlen=str)
        for key, value in {"root name": root, "computational sequence description": f"fixture {root}",
                           "dimension names": json.dumps(["f"]), "computational sequence version": "1.0",
                           "alignment compatible": "True", "dataset name": "CMU-MOSI"}.items():
            meta.create_dataset(key, (1,), dtype=string, data=[value])


def _frames(rng, duration: float, step: float, dim: int) -> tuple[np.ndarray, np.ndarray]:
    starts = np.arange(0.0, duration, step)
    intervals = np.stack([starts, starts + step], axis=1)
    return rng.normal(size=(len(starts), dim)).astype(np.float32), intervals


def make_csd_files(folder: Path) -> tuple[dict[str, Path], Path, dict]:
    """Words (with ``b'sp'``), opinion labels, COVAREP-like (5-d, 10 Hz, one ``-inf``) and FACET-like
    (20-d, 5 Hz) ``.csd`` files for five videos, plus a folds CSV covering four of them."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    words, labels, audio, vision = {}, {}, {}, {}
    for video, entries in CSD_WORDS.items():
        words[video] = (np.array([[w.encode()] for w, _, _ in entries]),
                        np.array([[s, e] for _, s, e in entries], dtype=np.float64))
        segments = CSD_SEGMENTS[video]
        labels[video] = (np.array([[y] for *_, y in segments], dtype=np.float32),
                         np.array([[s, e] for s, e, _ in segments], dtype=np.float64))
        audio[video] = _frames(rng, 3.2, 0.1, 5)
        vision[video] = _frames(rng, 3.2, 0.2, 20)
    audio["vid_a"][0][3, 1] = -np.inf
    files = {
        "words": folder / "CMU_MOSI_TimestampedWords.csd",
        "labels": folder / "CMU_MOSI_Opinion_Labels.csd",
        "audio": folder / "CMU_MOSI_COVAREP.csd",
        "vision": folder / "CMU_MOSI_Visual_Facet_41.csd",
    }
    _write_csd(files["words"], "CMU_MOSI_ModifiedTimestampedWords", words)
    _write_csd(files["labels"], "CMU_MOSI_Opinion_Labels", labels)
    _write_csd(files["audio"], "CMU_MOSI_COVAREP", audio)
    _write_csd(files["vision"], "CMU_MOSI_Visual_Facet_41", vision)
    folds = folder / "folds.csv"
    with open(folds, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["video_id", "mode"])
        writer.writerows(CSD_FOLDS.items())
    return files, folds, {"words": words, "labels": labels, "audio": audio, "vision": vision}
