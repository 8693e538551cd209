"""Sharing on the Hugging Face Hub: push a trained checkpoint (safetensors weights, config with ``auto_map``, the
model code for ``trust_remote_code``, a model card) and load a converted dataset with its metadata by Hub id.

Everything goes through ``huggingface_hub`` and therefore honours ``HF_ENDPOINT`` (a mirror or a private Hub),
``HF_HOME``/``HF_HUB_CACHE`` (the cache), ``HF_TOKEN`` and ``HF_HUB_OFFLINE``. Nothing here touches the network
unless a push or a Hub load is asked for.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


def check_repo_id(repo_id: str) -> str:
    """Return ``repo_id`` when it looks like ``org/name``; raise ``ValueError`` saying what is wrong otherwise."""
    if not isinstance(repo_id, str) or repo_id.count("/") != 1:
        raise ValueError(f"repo id {repo_id!r} must look like 'org/name' (a user or organisation, '/', a name)")
    if not _REPO_ID.match(repo_id) or ".." in repo_id or "--" in repo_id or repo_id.endswith((".git", ".")):
        raise ValueError(
            f"repo id {repo_id!r} is not valid: use letters, digits, '-', '_' and '.', start each part with a "
            "letter or digit, no '--' or '..', no trailing '.git'"
        )
    return repo_id


def check_can_push(repo_id: str) -> None:
    """Fail early (before any training or upload) on a bad repo id or when ``HF_HUB_OFFLINE`` is set."""
    from huggingface_hub import constants
    from huggingface_hub.errors import OfflineModeIsEnabled

    check_repo_id(repo_id)
    if constants.HF_HUB_OFFLINE:
        raise OfflineModeIsEnabled(
            f"cannot push to {repo_id}: HF_HUB_OFFLINE is set. Unset it to upload to {constants.ENDPOINT} "
            "(HF_ENDPOINT selects another Hub or mirror)."
        )


def is_hub_dataset_id(path: str) -> bool:
    """True for ``org/name`` strings that are not an existing local path."""
    return bool(_REPO_ID.match(path)) and not os.path.exists(path)


# ------------------------------------------------------------------------------------------------- models


def find_run_files(path: str | os.PathLike) -> dict[str, Any]:
    """Locate a checkpoint and the training outputs around it.

    ``path`` is either a checkpoint folder (``<output_dir>/seed_<n>/best`` written by ``train.py``, or any
    ``save_pretrained`` folder) or a run's ``output_dir`` (then the best seed's checkpoint is used). Returns
    ``{"checkpoint", "result", "summary", "run"}``; the last three are ``None`` when not found.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a folder")
    summary = None
    if (path / "results.json").is_file() and not (path / "config.json").exists():
        summary = json.loads((path / "results.json").read_text())
        path = path / f"seed_{summary['best_seed']}" / "best"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{path} has no config.json: pass a checkpoint folder written by train.py "
            "(<output_dir>/seed_<n>/best) or by save_pretrained, or the run's output_dir"
        )
    result_path = path.parent / "result.json"
    result = json.loads(result_path.read_text()) if result_path.is_file() else None
    output_dir = path.parent.parent
    if summary is None and result is not None and (output_dir / "results.json").is_file():
        candidate = json.loads((output_dir / "results.json").read_text())
        if result["seed"] in candidate.get("seeds", []):
            summary = candidate
    run = None
    if (output_dir / "run_config.yaml").is_file() and result is not None:
        from .training import load_config

        run = load_config(str(output_dir / "run_config.yaml"))
    return {"checkpoint": path, "result": result, "summary": summary, "run": run}


def prepare_model_folder(path: str | os.PathLike, target: str | os.PathLike, repo_id: str | None = None) -> Path:
    """Write into ``target`` exactly what a model repo holds: ``model.safetensors``, ``config.json`` with
    ``auto_map``, the model code files and ``README.md``.

    The weights are loaded with this package's class for the config's ``model_type`` (so a checkpoint whose
    weights do not match its method fails here, not for the users) and saved again. The model card is rebuilt
    from the training outputs when they are found (mean ± std over seeds), else the checkpoint's own
    ``README.md`` is kept.
    """

    import modeling

    files = find_run_files(path)
    checkpoint, target = files["checkpoint"], Path(target)
    model_type = json.loads((checkpoint / "config.json").read_text()).get("model_type")
    if model_type not in modeling.METHODS:
        raise ValueError(
            f"{checkpoint}/config.json has model_type {model_type!r}, not a method of this package "
            f"({', '.join(sorted(modeling.METHODS))})"
        )
    model_class = modeling.METHODS[model_type][1]
    # the loading info reports weights that do not fit the class; mismatched shapes raise
    try:
        model, info = model_class.from_pretrained(checkpoint, output_loading_info=True)
    except RuntimeError as err:
        raise ValueError(f"{checkpoint}: the weights do not match {model_class.__name__}: {err}") from err
    problems = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    if problems:
        raise ValueError(f"{checkpoint}: the weights do not match {model_class.__name__}: {problems}")
    model.save_pretrained(target)
    if files["run"] is not None and files["summary"] is not None:
        from .model_card import write_model_card

        summary = files["summary"]
        write_model_card(
            str(target), files["run"], files["result"], summary["task"], summary.get("dataset_metadata", {}),
            summary["environment"], summary["num_processes"], summary, repo_id=repo_id,
        )
    elif (checkpoint / "README.md").is_file():
        (target / "README.md").write_text((checkpoint / "README.md").read_text())
    else:
        raise FileNotFoundError(
            f"{checkpoint} has no README.md and no training outputs (result.json, ../../results.json, "
            "../../run_config.yaml) to write a model card from; push a folder written by train.py"
        )
    return target


def push_checkpoint(
    path: str | os.PathLike,
    repo_id: str,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str = "Upload trained model",
) -> str:
    """Push a checkpoint (see :func:`prepare_model_folder`) to ``repo_id``; return the commit URL.

    Creates the repo (``private`` when asked) and, for ``revision``, the branch when it does not exist.
    """
    from huggingface_hub import HfApi

    check_repo_id(repo_id)
    with tempfile.TemporaryDirectory(prefix="msa_push_") as staging:
        prepare_model_folder(path, staging, repo_id=repo_id)
        check_can_push(repo_id)
        api = HfApi()
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        commit = api.upload_folder(repo_id=repo_id, folder_path=staging, revision=revision,
                                   commit_message=commit_message)
    return commit.commit_url


# ----------------------------------------------------------------------------------------------- datasets


def load_hub_msa_dataset(repo_id: str, name: str | None = None, revision: str | None = None):
    """``load_dataset(repo_id, name)`` plus the ``msa_metadata/<config>.json`` that ``push_dataset_to_hub``
    uploads beside the parquet shards; return ``(DatasetDict, metadata)`` like ``load_msa_dataset``."""
    from datasets import load_dataset
    from datasets.exceptions import DatasetNotFoundError
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    from .features import read_metadata

    try:
        dataset = load_dataset(repo_id, name, revision=revision)
    except (DatasetNotFoundError, ConnectionError) as err:  # also a mistyped local path lands here
        raise FileNotFoundError(f"{repo_id!r} is not a local folder, and as a Hub dataset: {err}") from err
    config = name or next(iter(dataset.values())).info.config_name or "default"
    try:
        sidecar = hf_hub_download(repo_id, f"msa_metadata/{config}.json", repo_type="dataset", revision=revision)
        with open(sidecar) as fh:
            metadata = json.load(fh)
    except (EntryNotFoundError, LocalEntryNotFoundError) as err:
        metadata = read_metadata(dataset)
        if not metadata:
            logger.warning("%s (config %s) has no msa_metadata/%s.json (%s): padded lengths and the metric scale "
                           "fall back to defaults", repo_id, config, config, type(err).__name__)
    metadata["hub_id"] = repo_id
    return dataset, metadata
