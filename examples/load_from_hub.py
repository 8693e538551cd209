"""Load a trained model and a converted dataset from the Hub, predict on the first test utterances.

    python examples/load_from_hub.py org/dlf-mosi org/cmu-mosi --config aligned_50                      # with `modeling`
    python examples/load_from_hub.py org/dlf-mosi org/cmu-mosi --config aligned_50 --trust-remote-code  # without it

With ``--trust-remote-code`` the model code stored in the model repo is used, so only torch, transformers and
datasets are needed. ``HF_ENDPOINT`` (mirror), ``HF_HOME`` (cache) and ``HF_HUB_OFFLINE=1`` (cache only) apply.
"""

from __future__ import annotations

import argparse

import torch
from datasets import load_dataset
from transformers import AutoModel


def pad_batch(rows: list[dict]) -> dict[str, torch.Tensor]:
    """Model inputs from dataset rows: pad ``input_ids`` and the ``(T, D)`` audio/vision arrays to the longest row."""
    ids = [torch.as_tensor(row["input_ids"], dtype=torch.long) for row in rows]
    width = max(len(x) for x in ids)
    batch = {"input_ids": torch.zeros(len(rows), width, dtype=torch.long)}
    batch["attention_mask"] = torch.zeros_like(batch["input_ids"])
    for i, x in enumerate(ids):
        batch["input_ids"][i, : len(x)] = x
        batch["attention_mask"][i, : len(x)] = 1
    for modality in ("audio", "vision"):
        if modality not in rows[0]:
            continue  # a text-only dataset: the model takes its missing-modality path
        seqs = [torch.as_tensor(row[modality], dtype=torch.float32) for row in rows]
        lengths = torch.tensor([len(s) for s in seqs])
        padded = torch.zeros(len(rows), int(lengths.max()), seqs[0].shape[-1])
        for i, s in enumerate(seqs):
            padded[i, : len(s)] = s
        batch[modality], batch[f"{modality}_lengths"] = padded, lengths
    return batch


def main(argv: list[str] | None = None) -> list[float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="model repo id (or a local checkpoint folder)")
    parser.add_argument("dataset", help="dataset repo id pushed by a converter")
    parser.add_argument("--config", default=None, help="dataset configuration, e.g. aligned_50")
    parser.add_argument("--trust-remote-code", action="store_true", help="use the code in the model repo")
    parser.add_argument("--rows", type=int, default=4)
    args = parser.parse_args(argv)
    if not args.trust_remote_code:
        import modeling  # noqa: F401  (registers the methods with AutoModel)

    model = AutoModel.from_pretrained(args.model, trust_remote_code=args.trust_remote_code).eval()
    test = load_dataset(args.dataset, args.config, split="test")
    rows = [test[i] for i in range(min(args.rows, len(test)))]
    with torch.no_grad():
        logits = model(**pad_batch(rows)).logits
    predictions = logits[:, 0].tolist() if logits.shape[-1] == 1 else logits.argmax(-1).tolist()
    for row, prediction in zip(rows, predictions):
        print(f"{row['id']}: predicted {prediction:+.3f}, label {row['labels']:+.3f}  {row['text'][:60]!r}")
    return predictions


if __name__ == "__main__":
    main()
