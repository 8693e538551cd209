"""Model cards with test results as ``model-index`` eval results (parsed back by ``huggingface_hub.ModelCard``)."""

from __future__ import annotations

import os
from typing import Any

from .metrics import mmsa_keys

PAPERS = {
    "misa": {
        "title": "MISA: Modality-Invariant and -Specific Representations for Multimodal Sentiment Analysis",
        "bibtex": (
            "@inproceedings{hazarika2020misa,\n"
            "  title={MISA: Modality-Invariant and -Specific Representations for Multimodal Sentiment Analysis},\n"
            "  author={Hazarika, Devamanyu and Zimmermann, Roger and Poria, Soujanya},\n"
            "  booktitle={Proceedings of the 28th ACM International Conference on Multimedia},\n"
            "  pages={1122--1131},\n  year={2020}\n}"
        ),
        "code": "https://github.com/declare-lab/MISA",
    },
    "dlf": {
        "title": "DLF: Disentangled-Language-Focused Multimodal Sentiment Analysis",
        "bibtex": (
            "@inproceedings{wang2025dlf,\n"
            "  title={DLF: Disentangled-Language-Focused Multimodal Sentiment Analysis},\n"
            "  author={Wang, Pan and Zhou, Qiang and Wu, Yawen and Chen, Tianlong and Hu, Jingtong},\n"
            "  booktitle={Proceedings of the AAAI Conference on Artificial Intelligence},\n"
            "  year={2025}\n}"
        ),
        "code": "https://github.com/pwang322/DLF",
    },
    "dmd": {
        "title": "Decoupled Multimodal Distilling for Emotion Recognition",
        "bibtex": (
            "@inproceedings{li2023dmd,\n"
            "  title={Decoupled Multimodal Distilling for Emotion Recognition},\n"
            "  author={Li, Yong and Wang, Yuanzhi and Cui, Zhen},\n"
            "  booktitle={Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},\n"
            "  year={2023}\n}"
        ),
        "code": "https://github.com/mdswyz/DMD",
    },
    "derl": {
        "title": "Mixture of Disentangled Experts with Missing Modalities for Robust Multimodal Sentiment Analysis "
        "(DERL: Disentangled Expert Representation Learning)",
        "bibtex": (
            "@article{li2026derl,\n"
            "  title={Mixture of Disentangled Experts with Missing Modalities for Robust Multimodal Sentiment Analysis},\n"
            "  author={Li and Zhang and Miao and Cheng and Li and Han and Li},\n"
            "  journal={arXiv preprint arXiv:2602.01833},\n  year={2026}\n}"
        ),
        "code": "no official code",
    },
    "tsda": {
        "title": "Temporal-Spatial Decouple before Act: Disentangled Representation Learning for Multimodal "
        "Sentiment Analysis",
        "bibtex": (
            "@inproceedings{meng2026tsda,\n"
            "  title={Temporal-Spatial Decouple before Act: Disentangled Representation Learning for Multimodal "
            "Sentiment Analysis},\n"
            "  author={Meng, Chunlei and Zhou, Ziyang and He and Du and Ouyang and Gan},\n"
            "  booktitle={IEEE International Conference on Acoustics, Speech and Signal Processing (ICASSP)},\n"
            "  year={2026},\n  note={arXiv:2601.13659}\n}"
        ),
        "code": "no official code",
    },
    "fdmer": {
        "title": "Disentangled Representation Learning for Multimodal Emotion Recognition",
        "bibtex": (
            "@inproceedings{yang2022fdmer,\n"
            "  title={Disentangled Representation Learning for Multimodal Emotion Recognition},\n"
            "  author={Yang, Dingkang and Huang, Shuai and Kuang, Haopeng and Du, Yangtao and Zhang, Lihua},\n"
            "  booktitle={Proceedings of the 30th ACM International Conference on Multimedia},\n"
            "  year={2022},\n  doi={10.1145/3503161.3547754}\n}"
        ),
        "code": "no official code",
    },
    "tridira": {
        "title": "Triple Disentangled Representation Learning for Multimodal Affective Analysis",
        "bibtex": (
            "@article{zhou2025tridira,\n"
            "  title={Triple Disentangled Representation Learning for Multimodal Affective Analysis},\n"
            "  author={Zhou, Ying and Liang, Xuefeng and Chen, Han and Zhao, Yin and Chen, Xin and Yu, Lida},\n"
            "  journal={Information Fusion},\n  volume={114},\n  pages={102663},\n  year={2025}\n}"
        ),
        "code": "no official code",
    },
}

METRIC_NAMES = {
    "acc2_has0": "Acc-2 (negative / non-negative)",
    "f1_has0": "F1 (negative / non-negative)",
    "acc2_non0": "Acc-2 (negative / positive, zeros excluded)",
    "f1_non0": "F1 (negative / positive, zeros excluded)",
    "acc5": "Acc-5",
    "acc7": "Acc-7",
    "mae": "MAE",
    "corr": "Pearson correlation",
    "acc2": "Acc-2",
    "acc3": "Acc-3",
    "f1": "F1",
    "accuracy": "Accuracy",
    "f1_weighted": "Weighted F1",
}


#: the metadata keys of a converted dataset that model cards show (kept in ``results.json`` by training)
CARD_METADATA_KEYS = ("dataset", "hub_id", "aligned", "feature_dims", "padded_lengths", "scale")


def card_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """The part of a dataset's metadata that :func:`write_model_card` uses."""
    return {key: metadata[key] for key in CARD_METADATA_KEYS if metadata.get(key) is not None}


def format_metric_value(mean: float, std: float | None = None) -> float | str:
    """A ``model-index`` metric value: the number itself, or ``"mean ± std"`` (the form ``EvalResult`` documents)."""
    return float(mean) if std is None else f"{mean:.4f} ± {std:.4f}"


def parse_metric_value(value: Any) -> tuple[float, float | None]:
    """``(mean, std)`` of a metric value read back from a card (``std`` is ``None`` for a plain number)."""
    if isinstance(value, (int, float)):
        return float(value), None
    mean, sep, std = str(value).partition("±")
    if not sep:
        return float(mean), None
    return float(mean), float(std)


def write_model_card(
    folder: str,
    run,
    result: dict[str, Any],
    task: str,
    metadata: dict[str, Any],
    env: dict[str, Any],
    num_processes: int,
    summary: dict[str, Any] | None = None,
    repo_id: str | None = None,
) -> str:
    """Write ``README.md`` into a checkpoint folder and return its text.

    ``result`` is the checkpoint's seed; with a ``summary`` of several seeds the ``model-index`` values are
    ``"mean ± std"`` over the seeds (sample std). ``repo_id`` fills the usage example.
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    hub_id = metadata.get("hub_id")
    dataset_name = str(metadata.get("dataset", run.data.path))
    stats = summary["stats"] if summary and len(summary["seeds"]) > 1 else None
    test = {k: v for k, v in result["test"].items()
            if k != "loss" and v == v and (stats is None or stats[k]["mean"] == stats[k]["mean"])}  # no NaN
    eval_results = [
        EvalResult(
            task_type="text-classification" if task == "classification" else "tabular-regression",
            task_name="Multimodal sentiment analysis",
            dataset_type=str(hub_id or dataset_name),
            dataset_name=dataset_name,
            dataset_config=run.data.name if hub_id else None,
            dataset_split="test",
            metric_type=key,
            metric_name=METRIC_NAMES.get(key, key),
            metric_value=format_metric_value(stats[key]["mean"], stats[key]["std"]) if stats else float(value),
        )
        for key, value in test.items()
    ]
    paper = PAPERS.get(run.method, {})
    text_model = run.model.get("text_model")
    data = ModelCardData(
        library_name="transformers",
        license="apache-2.0",
        tags=["multimodal-sentiment-analysis", "disentangled-representation", run.method],
        datasets=[hub_id] if hub_id else None,
        base_model=text_model if text_model and not os.path.exists(text_model) else None,
        model_name=f"{run.method.upper()} ({dataset_name})",
        eval_results=eval_results,
    )
    seed = result["seed"]
    if stats:
        header = [f"| metric | mean ± std over seeds {summary['seeds']} | this checkpoint (seed {seed}) |",
                  "| --- | --- | --- |"]
        rows = [f"| {k} | {stats[k]['mean']:.4f} ± {stats[k]['std']:.4f} | {v:.4f} |" for k, v in test.items()]
        best = " (the best validation loss)" if summary.get("best_seed") == seed else ""
        seeds_note = f"mean ± std (sample std) over {len(summary['seeds'])} seeds; this checkpoint is seed {seed}{best}"
    else:
        header = [f"| metric | seed {seed} |", "| --- | --- |"]
        rows = [f"| {k} | {v:.4f} |" for k, v in test.items()]
        seeds_note = f"one seed ({seed})"
    where = repo_id or "<this repo or folder>"
    dims = metadata.get("feature_dims") or {}
    layout = {True: "word-aligned", False: "unaligned"}.get(metadata.get("aligned"), "alignment not recorded")
    source = f"Hub id `{hub_id}`" if hub_id else f"loaded from `{run.data.path}`"
    if hub_id and run.data.name:
        source += f" (config `{run.data.name}`)"
    dataset_lines = [
        f"- dataset: `{dataset_name}`, {source}",
        f"- {layout}; feature widths: " + (", ".join(f"{m} {d}" for m, d in dims.items()) or "as in config.json"),
        f"- metric set `{task}`; results on the `test` split, checkpoint selected on `validation` "
        f"(`{run.training.select_on}`)",
    ]
    if metadata.get("padded_lengths"):
        dataset_lines.append(f"- padded lengths in the source: {metadata['padded_lengths']}")
    env_rows = [f"| {k} | {v} |" for k, v in (env or {}).items()] or ["| (not recorded) | |"]
    description = "\n".join(
        [
            f"# {run.method.upper()} trained on {dataset_name}",
            "",
            f"Method: **{paper.get('title', run.method)}** (official code: {paper.get('code', 'n/a')}), "
            f"implemented in `transformers` by the `modeling` package. Preset: `{run.preset or 'default'}`.",
            "",
            "## Data",
            "",
            *dataset_lines,
            "",
            "## Test results",
            "",
            f"{seeds_note.capitalize()}.",
            "",
            *header,
            *rows,
            "",
            f"MMSA names (seed {seed}): " + ", ".join(f"{k}={v:.4f}" for k, v in mmsa_keys(test).items()),
            "",
            "## Usage",
            "",
            "With the `modeling` package (project msa-disentangled) installed:",
            "",
            "```python",
            "import modeling  # registers the methods with the Auto classes",
            "from transformers import AutoModel",
            f"model = AutoModel.from_pretrained({where!r}).eval()",
            "```",
            "",
            "Without it, the code in this repo is used:",
            "",
            "```python",
            "from transformers import AutoModel",
            f"model = AutoModel.from_pretrained({where!r}, trust_remote_code=True).eval()",
            "out = model(input_ids=..., attention_mask=..., audio=..., audio_lengths=..., vision=..., vision_lengths=...)",
            "score = out.logits[:, 0]  # sentiment score (regression); class logits when num_labels > 1",
            "```",
            "",
            "`audio`/`vision` are `(batch, frames, width)` float tensors with the widths of `config.json` "
            "(`audio_dim`, `vision_dim`) and `*_lengths` their true lengths; `input_ids` are BERT ids with [CLS]/[SEP].",
            "",
            "## Training",
            "",
            f"{num_processes} process(es); best epoch {result['best_epoch']} of {result['epochs_run']}; "
            f"training time {result['train_time_s']:.1f} s for this seed. Full configuration "
            "(hyper-parameters, data and optimisation switches):",
            "",
            "```yaml",
            _yaml(run.to_dict()),
            "```",
            "",
            "Environment:",
            "",
            "| package / setting | value |",
            "| --- | --- |",
            *env_rows,
            "",
            "## Intended use and limits",
            "",
            "Research on multimodal sentiment analysis with pre-extracted features of the same kind, dimensions and "
            "alignment as the training data. Not for decisions about people. Scores on small benchmarks such as "
            "CMU-MOSI vary by 1-3 points across seeds; compare means over several seeds. Features must come from "
            "their original authors under their terms.",
            "",
            "## Citation",
            "",
            "```bibtex",
            paper.get("bibtex", ""),
            "```",
        ]
    )
    card = ModelCard.from_template(data, template_str="---\n{{ card_data }}\n---\n\n{{ model_description }}\n", model_description=description)
    os.makedirs(folder, exist_ok=True)
    card.save(os.path.join(folder, "README.md"))
    return str(card)


def _yaml(config: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(config, sort_keys=False).strip()
