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


def write_model_card(
    folder: str,
    run,
    result: dict[str, Any],
    task: str,
    metadata: dict[str, Any],
    env: dict[str, Any],
    num_processes: int,
    summary: dict[str, Any] | None = None,
) -> str:
    """Write ``README.md`` into a checkpoint folder and return its text."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    dataset_id = metadata.get("hub_id") or run.data.path
    dataset_name = metadata.get("dataset", run.data.path)
    test = result["test"]
    stats = summary["stats"] if summary else None
    eval_results = [
        EvalResult(
            task_type="text-classification" if task == "classification" else "tabular-regression",
            task_name="Multimodal sentiment analysis",
            dataset_type=str(dataset_id),
            dataset_name=str(dataset_name),
            dataset_split="test",
            metric_type=key,
            metric_name=METRIC_NAMES.get(key, key),
            metric_value=float(stats[key]["mean"] if stats else value),
        )
        for key, value in test.items()
        if key != "loss" and value == value
    ]
    paper = PAPERS.get(run.method, {})
    data = ModelCardData(
        library_name="transformers",
        license="apache-2.0",
        tags=["multimodal-sentiment-analysis", "disentangled-representation", run.method],
        model_name=f"{run.method.upper()} ({dataset_name})",
        eval_results=eval_results,
    )
    rows = []
    for key, value in test.items():
        if stats and key in stats:
            rows.append(f"| {key} | {stats[key]['mean']:.4f} ± {stats[key]['std']:.4f} |")
        else:
            rows.append(f"| {key} | {value:.4f} |")
    seeds_note = (
        f"mean ± std over seeds {summary['seeds']} (sample std); this checkpoint is seed {result['seed']}"
        if summary
        else f"seed {result['seed']}"
    )
    config = run.to_dict()
    description = "\n".join(
        [
            f"# {run.method.upper()} trained on {dataset_name}",
            "",
            f"Method: **{paper.get('title', run.method)}** (official code: {paper.get('code', 'n/a')}).",
            f"Preset: `{run.preset or 'default'}`. Dataset: `{dataset_id}`, metric set `{task}`, test split.",
            "",
            "## Test results",
            "",
            f"Selection on validation `{run.training.select_on}`; {seeds_note}.",
            "",
            "| metric | value |",
            "| --- | --- |",
            *rows,
            "",
            "MMSA names: " + ", ".join(f"{k}={v:.4f}" for k, v in mmsa_keys({k: v for k, v in test.items() if k != 'loss'}).items()),
            "",
            "## Usage",
            "",
            "```python",
            "from transformers import AutoModel",
            "model = AutoModel.from_pretrained('<this repo or folder>', trust_remote_code=True)",
            "out = model(input_ids=..., attention_mask=..., audio=..., audio_lengths=..., vision=..., vision_lengths=...)",
            "score = out.logits[:, 0]  # sentiment in [-3, 3] for MOSI-style data",
            "```",
            "",
            "## Training",
            "",
            "```yaml",
            _yaml(config),
            "```",
            "",
            f"Environment: {env}; processes: {num_processes}; best epoch {result['best_epoch']} of {result['epochs_run']}; "
            f"training time {result['train_time_s']:.1f} s.",
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
