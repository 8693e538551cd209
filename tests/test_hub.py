"""Sharing on the Hub, tested against real local servers on 127.0.0.1 (no stub of our own code):

* upload path: the test Hub of ``hub_test_server.FakeHub`` (the documented Hub HTTP endpoints) receives
  ``python -m modeling.push`` for every method, a converter's ``--push-to-hub`` (two configs of one dataset
  repo) and ``train.py --push_to_hub`` trained on that Hub dataset; everything is then loaded back with the
  package, without it (``trust_remote_code``), and offline from the cache with the server watching that
  no request arrives;
* download path: the olah mirror (``olah==0.5.4``, ``.ci/install_olah.sh``) serving local git repositories;
  skipped when olah is not installed;
* an opt-in push to the real Hub (``MSA_TEST_REAL_HUB=1`` and ``HF_TOKEN``).

Clients run in worker subprocesses (``hub_test_server.Worker``) because ``HF_ENDPOINT``, ``HF_HOME`` and
``HF_HUB_OFFLINE`` are read when ``huggingface_hub`` is imported: each worker is configured by environment
variables only, like a user's shell.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path

import pytest
import torch
import yaml

import fixtures_data as fx
import modeling
from conftest import BLOCK_PACKAGE, REPO_ROOT, random_batch, tiny_text_config
from hub_test_server import FakeHub, OlahMirror, Worker, WorkerError, find_olah_cli
from modeling.converters import convert_mmsa_pickle
from modeling.features import save_msa_dataset
from modeling.model_card import card_metadata, format_metric_value, parse_metric_value
from modeling.training import RunConfig, summarise, write_summary
from test_all_methods import TINY

METHOD_NAMES = sorted(modeling.METHODS)
SEEDS = (1, 2)
DATASET_REPO = "org/cmu-mosi"
CLEARED = ("HF_HUB_CACHE", "HF_DATASETS_CACHE", "HF_MODULES_CACHE", "HF_ASSETS_CACHE", "HF_XET_CACHE",
           "TRANSFORMERS_CACHE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN_PATH", "HF_ENDPOINT")
PRELUDE = "import torch\ntorch.set_num_threads(1)\nimport datasets, huggingface_hub, transformers\n"


def jsonable(value):
    """``value`` as it comes back from a worker (JSON: tuples become lists)."""
    return json.loads(json.dumps(value))


def client_env(home: Path, endpoint: str | None, offline: bool = False) -> dict[str, str]:
    """The environment of one client: only HF_* variables decide where it reads and writes."""
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(HF_HOME=str(home), HF_HUB_OFFLINE="1" if offline else "0", HF_HUB_DISABLE_XET="1",
               HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1", HF_DATASETS_DISABLE_PROGRESS_BARS="1",
               TRANSFORMERS_VERBOSITY="error", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1", PYTHONPATH="")
    if endpoint:
        env.update(HF_ENDPOINT=endpoint, HF_TOKEN="hf_fake_test_token")
    return env


def start_worker(workdir: Path, name: str, env: dict[str, str], with_package: bool) -> Worker:
    prelude = (PRELUDE + "import modeling\n") if with_package else (BLOCK_PACKAGE + PRELUDE)
    folder = workdir / name
    folder.mkdir(parents=True, exist_ok=True)
    return Worker(env, folder, prelude=prelude, stderr_path=workdir / f"{name}.stderr")


# Helpers defined in every worker. Per-method work is caught so that one method's failure is reported by its own
# parametrised test while the others still run.
WORKER_HELPERS = r'''
import json, traceback
import torch
from transformers import AutoModel

def each(methods, fn):
    out = {}
    for method in methods:
        try:
            out[method] = {"ok": True, **(fn(method) or {})}
        except Exception:
            out[method] = {"ok": False, "error": traceback.format_exc()[-3000:]}
    return out

def check_model(repo, io_path, **kwargs):
    io = torch.load(io_path)
    model = AutoModel.from_pretrained(repo, **kwargs).eval()
    with torch.no_grad():
        diff = (model(**io["batch"]).logits - io["expected"]).abs().max().item()
    return {"module": type(model).__module__, "class": type(model).__name__, "max_diff": diff}
'''


# --------------------------------------------------------------------------------------- local material


def make_run(root: Path, method: str) -> Path:
    """A tiny model of ``method`` saved like a 2-seed ``train.py`` run (``<root>/<method>/seed_1/best``), with
    ``result.json``, ``results.json`` (written by the training code's own ``summarise``/``write_summary``) and
    ``run_config.yaml``; ``io.pt`` holds a batch and the logits the pushed model must reproduce."""
    config_class, model_class = modeling.METHODS[method]
    torch.manual_seed(0)
    config = config_class(text_config=tiny_text_config(), audio_dim=5, vision_dim=20, **TINY[method])
    model = model_class(config).eval()
    out = root / method
    model.save_pretrained(out / "seed_1" / "best")
    batch = random_batch()
    with torch.no_grad():
        torch.save({"batch": batch, "expected": model(**batch).logits}, out / "io.pt")
    run = RunConfig.from_dict({"method": method, "model": dict(TINY[method]),
                               "data": {"path": DATASET_REPO, "name": "aligned_50"},
                               "training": {"output_dir": str(out), "seeds": list(SEEDS)}})
    (out / "run_config.yaml").write_text(yaml.safe_dump(run.to_dict(), sort_keys=False))
    per_seed = {}
    for seed in SEEDS:
        test = {"loss": 0.9, "acc2_non0": 0.70 + seed / 100, "mae": 0.80 - seed / 50, "corr": 0.5 + seed / 20}
        per_seed[seed] = {"seed": seed, "best_epoch": 3, "epochs_run": 5, "validation": {"loss": 0.9 + seed / 100},
                          "test": test, "train_time_s": 12.5, "train_samples_per_s": 100.0,
                          "checkpoint": str(out / f"seed_{seed}" / "best")}
    (out / "seed_1" / "result.json").write_text(json.dumps(per_seed[1]))
    summary = summarise(per_seed, run, "mosi", 1)
    summary["dataset_metadata"] = card_metadata({"dataset": "mosi", "hub_id": DATASET_REPO, "aligned": True,
                                                 "feature_dims": {"audio": 5, "vision": 20}})
    write_summary(summary, str(out))
    return out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hub")


@pytest.fixture(scope="module")
def runs(workdir) -> dict[str, Path]:
    """One run per method that has a TINY configuration (test_all_methods.py requires one for every method)."""
    return {method: make_run(workdir / "runs", method) for method in METHOD_NAMES if method in TINY}


@pytest.fixture(scope="module")
def mmsa_pickles(workdir) -> dict[str, Path]:
    for layout in ("aligned", "unaligned"):
        (workdir / layout).mkdir()
    return {"aligned_50": fx.make_mmsa_pickle(workdir / "aligned", aligned=True)[0],
            "unaligned_50": fx.make_mmsa_pickle(workdir / "unaligned", aligned=False)[0]}


@pytest.fixture(scope="module")
def local_datasets(workdir, mmsa_pickles) -> dict[str, Path]:
    """The same conversions saved locally: what the Hub copies must equal."""
    out = {}
    for config, pickle in mmsa_pickles.items():
        dataset, metadata = convert_mmsa_pickle(pickle, dataset_name="mosi")
        out[config] = workdir / "local" / config
        save_msa_dataset(dataset, str(out[config]), metadata)
    return out


# ------------------------------------------------------------------------------------ test Hub (upload)


@pytest.fixture(scope="module")
def fake_hub():
    hub = FakeHub()
    yield hub
    hub.stop()


@pytest.fixture(scope="module")
def olah_mirror(workdir):
    """olah on 127.0.0.1 serving local git repos (None when olah is not installed)."""
    cli = find_olah_cli(REPO_ROOT)
    if cli is None:
        yield None
        return
    mirror = OlahMirror(cli, workdir / "olah")
    yield mirror
    mirror.stop()


@pytest.fixture(scope="module")
def workers(workdir, fake_hub, olah_mirror):
    """The clients, started together (their imports take seconds): the publisher (package installed), a user
    without the package, that user again offline on the same cache, and a client of the olah mirror."""
    user_home = workdir / "home_user"
    started = {
        "publisher": start_worker(workdir, "publisher", client_env(workdir / "home_pub", fake_hub.url), True),
        "user": start_worker(workdir, "user", client_env(user_home, fake_hub.url), False),
        "offline": start_worker(workdir, "offline", client_env(user_home, fake_hub.url, offline=True), False),
    }
    if olah_mirror is not None:
        started["olah"] = start_worker(workdir, "olah", client_env(workdir / "home_olah", olah_mirror.url), True)
    yield started
    for worker in started.values():
        worker.stop()


def run(worker: Worker, code: str, timeout: float = 180.0):
    try:
        return worker.run(WORKER_HELPERS + code, timeout=timeout)
    except WorkerError as err:
        pytest.fail(f"{err}\n--- worker stderr ---\n{worker.stderr_tail()}")


@pytest.fixture(scope="module")
def published(workers, runs, mmsa_pickles, workdir):
    """Everything pushed by the publisher: every method with ``python -m modeling.push``, the MMSA fixture as
    two configs of one dataset repo by the converter CLI, and a ``train.py --push_to_hub`` run on that data."""
    pub = workers["publisher"]
    method_runs = {m: str(p / "seed_1" / "best") for m, p in runs.items()}
    models = run(pub, f"""
from modeling.push import main as push
result = each({sorted(runs)!r}, lambda m: {{"url": push([{method_runs!r}[m], f"org/{{m}}-tiny"])}})
""")
    argv = [[str(REPO_ROOT / "datasets_scripts" / "convert_mmsa.py"), str(path), "--dataset", "mosi", "--output",
             str(workdir / "converted" / config), "--push-to-hub", DATASET_REPO, "--config-name", config]
            for config, path in mmsa_pickles.items()]
    run(pub, f"""
import runpy, sys
for argv in {argv!r}:
    sys.argv = argv
    runpy.run_path(argv[0], run_name="__main__")
""")
    text_config = tiny_text_config(vocab_size=30522).to_dict()  # the fixture's ids are bert-base-uncased ids
    config = {"method": "misa", "model": {**TINY["misa"], "text_config": text_config},
              "data": {"path": DATASET_REPO, "name": "aligned_50"},
              "training": {"output_dir": str(workdir / "trained"), "seeds": list(SEEDS), "epochs": 1,
                           "batch_size": 4, "tensorboard": False, "save_state": False}}
    (workdir / "train.yaml").write_text(yaml.safe_dump(config))
    trained = run(pub, f"""
import sys
sys.path.insert(0, {str(REPO_ROOT)!r})
import train
summary = train.main([{str(workdir / "train.yaml")!r}, "--push_to_hub", "--hub_model_id", "org/misa-trained"])
result = {{"stats": summary["stats"], "seeds": summary["seeds"], "best_seed": summary["best_seed"]}}
""", timeout=300)
    return {"models": models, "trained": trained}


def method_result(results: dict, method: str) -> dict:
    if method not in TINY:
        pytest.fail(f"{method} has no TINY configuration in tests/test_all_methods.py")
    entry = results[method]
    assert entry["ok"], entry.get("error")
    return entry


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_pushed_model_repo_is_complete(workers, published, runs, method):
    """safetensors weights, config with auto_map, the model code, and a model card with the paper, the data,
    the hyper-parameters, the environment and mean ± std eval results that huggingface_hub parses back."""
    method_result(published["models"], method)
    info = run(workers["publisher"], f"""
from huggingface_hub import HfApi, ModelCard, hf_hub_download
repo = "org/{method}-tiny"
card = ModelCard.load(repo)
weights = HfApi().get_paths_info(repo, ["model.safetensors"])[0]
result = {{"files": HfApi().list_repo_files(repo), "config": json.load(open(hf_hub_download(repo, "config.json"))),
          "weights_sha256": weights.lfs.sha256 if weights.lfs else None,
          "text": card.text, "data": card.data.to_dict(),
          "evals": [(e.metric_type, e.metric_value, e.dataset_type, e.dataset_config, e.dataset_split)
                    for e in card.data.eval_results]}}
""")
    files = set(info["files"])
    assert {"model.safetensors", "config.json", "README.md", f"modeling_{method}.py",
            f"configuration_{method}.py"} <= files
    assert not any(f.endswith((".bin", ".pt")) for f in files)
    checkpoint_weights = (runs[method] / "seed_1" / "best" / "model.safetensors").read_bytes()
    assert info["weights_sha256"] == hashlib.sha256(checkpoint_weights).hexdigest()  # stored as LFS, unchanged
    model_class = modeling.METHODS[method][1]
    auto_map = info["config"]["auto_map"]
    assert auto_map["AutoModel"] == f"{model_class.__module__.rsplit('.', 1)[1]}.{model_class.__name__}"
    assert {f"{target.split('.')[0]}.py" for target in auto_map.values()} <= files
    stats = json.loads((runs[method] / "results.json").read_text())["stats"]
    evals = {metric: rest for metric, *rest in info["evals"]}
    assert set(evals) == {"acc2_non0", "mae", "corr"}
    for metric, (value, dataset, config, split) in evals.items():
        mean, std = parse_metric_value(value)
        assert (mean, std) == (round(stats[metric]["mean"], 4), round(stats[metric]["std"], 4))
        assert std > 0 and (dataset, config, split) == (DATASET_REPO, "aligned_50", "test")
    assert info["data"]["datasets"] == [DATASET_REPO] and method in info["data"]["tags"]
    text = info["text"]
    paper = modeling.model_card.PAPERS.get(method)
    if paper:
        assert paper["title"] in text and paper["bibtex"] in text
    for needle in (f"org/{method}-tiny', trust_remote_code=True", "## Intended use and limits", "| torch |",
                   f"method: {method}", "this checkpoint is seed 1 (the best validation loss)",
                   "Hub id `org/cmu-mosi` (config `aligned_50`)", "word-aligned; feature widths: audio 5, vision 20"):
        assert needle in text


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_model_loads_back_with_the_package(workers, published, runs, method):
    method_result(published["models"], method)
    loaded = run(workers["publisher"], f"""
result = check_model("org/{method}-tiny", {str(runs[method] / "io.pt")!r})
""")
    assert loaded["module"] == modeling.METHODS[method][1].__module__
    assert loaded["max_diff"] < 1e-6


@pytest.fixture(scope="module")
def user_loads(workers, published, runs):
    """A user without the package loads every model (trust_remote_code), the dataset, its card and metadata."""
    io_paths = {m: str(p / "io.pt") for m, p in runs.items()}
    code = f"""
from datasets import load_dataset
from huggingface_hub import DatasetCard, hf_hub_download
models = each({sorted(runs)!r}, lambda m: check_model(f"org/{{m}}-tiny", {io_paths!r}[m], trust_remote_code=True))
data = {{}}
for config in ("aligned_50", "unaligned_50"):
    dataset = load_dataset({DATASET_REPO!r}, config)
    metadata = json.load(open(hf_hub_download({DATASET_REPO!r}, f"msa_metadata/{{config}}.json", repo_type="dataset")))
    data[config] = {{"features": dataset["train"].features.to_dict(), "test": dataset["test"].to_dict(),
                    "metadata": metadata}}
card = DatasetCard.load({DATASET_REPO!r}, repo_type="dataset")
result = {{"models": models, "data": data, "card_text": card.text, "card_data": card.data.to_dict()}}
"""
    return {"code": code, "result": run(workers["user"], code)}


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_model_loads_without_the_package(user_loads, method):
    loaded = method_result(user_loads["result"]["models"], method)
    assert loaded["module"].startswith("transformers_modules.org."), loaded["module"]
    assert loaded["class"] == modeling.METHODS[method][1].__name__
    assert loaded["max_diff"] < 1e-6


@pytest.fixture(scope="module")
def offline_loads(workers, fake_hub, user_loads):
    """The same user, HF_HUB_OFFLINE=1, same HF_HOME: everything again from the cache, and not one request."""
    before = len(fake_hub.requests)
    result = run(workers["offline"], user_loads["code"])
    return {"result": result, "requests": fake_hub.requests[before:]}


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_model_loads_offline_from_the_cache(offline_loads, method):
    assert offline_loads["requests"] == []
    loaded = method_result(offline_loads["result"]["models"], method)
    assert loaded["module"].startswith("transformers_modules.org.") and loaded["max_diff"] < 1e-6


@pytest.mark.parametrize("config", ["aligned_50", "unaligned_50"])
def test_dataset_round_trip_keeps_features_rows_metadata_and_card(user_loads, offline_loads, local_datasets,
                                                                  mmsa_pickles, config):
    """load_dataset(repo, config) gives the converter's features (Array2D kept), rows and metadata sidecar, also
    offline; the card has every config's section with source SHA-256, dimensions, extractors and the licence."""
    from modeling.converters import file_sha256
    from modeling.features import load_msa_dataset

    local, metadata = load_msa_dataset(str(local_datasets[config]))
    for loads in (user_loads, offline_loads):
        hub = loads["result"]["data"][config]
        assert hub["features"] == jsonable(local["train"].features.to_dict())
        assert hub["features"]["audio"]["_type"] == "Array2D"
        assert hub["test"] == jsonable(local["test"].to_dict())
        assert hub["metadata"] == jsonable(metadata)
    text = user_loads["result"]["card_text"]
    assert f"<!-- msa-config:{config} -->" in text and f"`{file_sha256(mmsa_pickles[config])}`" in text
    assert "| audio | 5 |" in text and "| vision | 20 |" in text and "COVAREP" in text
    assert "obtain them from the authors" in text
    configs = {c["config_name"] for c in user_loads["result"]["card_data"]["configs"]}
    assert configs == {"aligned_50", "unaligned_50"}


def test_training_reads_a_hub_dataset_id(workers, published, local_datasets):
    """data.path=org/name: training's loader returns the Hub copy with the converter's metadata sidecar."""
    from modeling.features import load_msa_dataset

    loaded = run(workers["publisher"], f"""
from modeling.training import DataArgs, load_data
dataset, metadata = load_data(DataArgs(path={DATASET_REPO!r}, name="unaligned_50"))
try:
    load_data(DataArgs(path="data/mosi_typo"))
except FileNotFoundError as err:
    missing = str(err)
result = {{"metadata": metadata, "train": dataset["train"].to_dict(), "missing": missing}}
""")
    assert "'data/mosi_typo' is not a local folder, and as a Hub dataset" in loaded["missing"]
    local, metadata = load_msa_dataset(str(local_datasets["unaligned_50"]))
    assert loaded["metadata"] == jsonable({**metadata, "hub_id": DATASET_REPO})
    assert loaded["metadata"]["padded_lengths"] == {"text": 8, "audio": 10, "vision": 12}
    assert loaded["train"] == jsonable(local["train"].to_dict())


def test_train_push_to_hub_end_to_end(workers, published, workdir):
    """train.py --push_to_hub on a Hub dataset: the card reports mean ± std over both seeds; a user without the
    package runs examples/load_from_hub.py and gets the predictions the package's own collator gives."""
    trained = published["trained"]
    card = run(workers["user"], """
from huggingface_hub import ModelCard
card = ModelCard.load("org/misa-trained")
result = {"evals": [(e.metric_type, e.metric_value, e.dataset_type) for e in card.data.eval_results],
          "datasets": card.data.datasets}
""")
    assert card["datasets"] == [DATASET_REPO]
    assert {metric for metric, _, _ in card["evals"]} >= {"acc2_has0", "acc2_non0", "mae", "corr", "acc7"}
    for metric, value, dataset in card["evals"]:
        stats = trained["stats"][metric]
        assert parse_metric_value(value) == (round(stats["mean"], 4), round(stats["std"], 4)) and dataset == DATASET_REPO
    argv = [str(REPO_ROOT / "examples" / "load_from_hub.py"), "org/misa-trained", DATASET_REPO, "--config",
            "aligned_50", "--trust-remote-code"]
    example = run(workers["user"], f"""
import runpy, sys
sys.argv = {argv!r}
result = runpy.run_path(sys.argv[0])["main"](sys.argv[1:])
""")
    reference = run(workers["publisher"], f"""
from modeling.data import MSACollator
from modeling.hub import load_hub_msa_dataset
model = AutoModel.from_pretrained("org/misa-trained").eval()
test = load_hub_msa_dataset({DATASET_REPO!r}, "aligned_50")[0]["test"]
with torch.no_grad():
    result = model(**MSACollator(max_text_length=None)([test[i] for i in range(4)])).logits[:, 0].tolist()
""")
    assert len(example) == 4 and example == pytest.approx(reference, abs=1e-5)


def test_push_to_a_private_branch(workers, published, runs):
    pushed = run(workers["publisher"], f"""
from huggingface_hub import HfApi
from modeling.push import main as push
push([{str(runs["dmd"] / "seed_1" / "best")!r}, "org/dmd-branch", "--private", "--revision", "v1"])
api = HfApi()
result = {{"private": api.model_info("org/dmd-branch").private,
          "main": api.list_repo_files("org/dmd-branch"),
          "v1": api.list_repo_files("org/dmd-branch", revision="v1"),
          "loaded": check_model("org/dmd-branch", {str(runs["dmd"] / "io.pt")!r}, revision="v1")}}
""")
    assert pushed["private"] is True
    assert "model.safetensors" in pushed["v1"] and "model.safetensors" not in pushed["main"]
    assert pushed["loaded"]["max_diff"] < 1e-6


# ------------------------------------------------------------------------------------- olah (download)


@pytest.fixture(scope="module")
def olah(workdir, workers, olah_mirror, runs, published, fake_hub) -> Worker:
    """The mirror serves every method's model folder as ``prepare_model_folder`` writes it (what a push
    uploads) and the dataset repo exactly as it was pushed to the test Hub."""
    from modeling.hub import prepare_model_folder

    if olah_mirror is None:
        pytest.skip("olah is not installed (run .ci/install_olah.sh or set OLAH_CLI)")
    for method, path in runs.items():
        folder = prepare_model_folder(path / "seed_1" / "best", workdir / "olah_src" / method, f"org/{method}-tiny")
        olah_mirror.add_repo("models", f"org/{method}-tiny", folder)
    source = fake_hub.export("dataset", DATASET_REPO, workdir / "olah_src" / "dataset")
    olah_mirror.add_repo("datasets", DATASET_REPO, source)
    return workers["olah"]


@pytest.fixture(scope="module")
def olah_loads(olah, runs):
    io_paths = {m: str(p / "io.pt") for m, p in runs.items()}
    return run(olah, f"""
from modeling.hub import load_hub_msa_dataset
models = each({sorted(runs)!r}, lambda m: check_model(f"org/{{m}}-tiny", {io_paths!r}[m]))
dataset, metadata = load_hub_msa_dataset({DATASET_REPO!r}, "aligned_50")
result = {{"models": models, "metadata": metadata, "features": dataset["train"].features.to_dict(),
          "test": dataset["test"].to_dict()}}
""")


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_olah_mirror_serves_every_model(olah_loads, method):
    loaded = method_result(olah_loads["models"], method)
    assert loaded["module"] == modeling.METHODS[method][1].__module__ and loaded["max_diff"] < 1e-6


def test_olah_mirror_serves_the_dataset_with_its_metadata(olah_loads, local_datasets):
    from modeling.features import load_msa_dataset

    local, metadata = load_msa_dataset(str(local_datasets["aligned_50"]))
    assert olah_loads["features"] == jsonable(local["train"].features.to_dict())
    assert olah_loads["test"] == jsonable(local["test"].to_dict())
    assert olah_loads["metadata"] == jsonable({**metadata, "hub_id": DATASET_REPO})


# ----------------------------------------------------------------------------------- errors, no server


def test_push_errors_are_clear(tmp_path, runs, capsys, monkeypatch):
    from huggingface_hub import constants

    from modeling.push import main as push

    def fails(argv, message):
        with pytest.raises(SystemExit) as exit_info:
            push(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err

    checkpoint = str(runs["misa"] / "seed_1" / "best")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # these fail before any request
    fails([str(tmp_path), "org/x"], "has no config.json")
    fails([checkpoint, "misa-mosi"], "must look like 'org/name'")
    fails([checkpoint, "org/bad--name"], "is not valid")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    fails([checkpoint, "org/x"], "HF_HUB_OFFLINE is set")


def test_prepare_refuses_weights_that_do_not_fit_and_unknown_methods(tmp_path, runs):
    import shutil

    from modeling.hub import prepare_model_folder

    checkpoint = tmp_path / "ckpt"
    shutil.copytree(runs["misa"] / "seed_1" / "best", checkpoint)
    config = json.loads((checkpoint / "config.json").read_text())
    (checkpoint / "config.json").write_text(json.dumps({**config, "hidden_size": 2 * config["hidden_size"]}))
    with pytest.raises(ValueError, match="weights do not match MISAModel"):
        prepare_model_folder(checkpoint, tmp_path / "out")
    (checkpoint / "config.json").write_text(json.dumps({**config, "model_type": "bert"}))
    with pytest.raises(ValueError, match="model_type 'bert', not a method of this package"):
        prepare_model_folder(checkpoint, tmp_path / "out")


def test_run_output_dir_resolves_to_the_best_seed(runs):
    from modeling.hub import find_run_files

    files = find_run_files(runs["misa"])
    assert files["checkpoint"] == runs["misa"] / "seed_1" / "best"
    assert files["result"]["seed"] == 1 and files["summary"]["best_seed"] == 1 and files["run"].method == "misa"


def test_train_checks_the_push_target_before_training(tmp_path):
    from modeling.training import train

    for hub_model_id, message in ((None, "needs --hub_model_id"), ("misa", "must look like 'org/name'")):
        run_config = RunConfig.from_dict({"data": {"path": str(tmp_path / "absent")},
                                          "training": {"push_to_hub": True, "hub_model_id": hub_model_id}})
        with pytest.raises(ValueError, match=message):
            train(run_config)


def test_single_seed_cards_hold_plain_numbers(tmp_path):
    from huggingface_hub import ModelCard

    from modeling.model_card import write_model_card

    run_config = RunConfig.from_dict({"method": "dlf", "data": {"path": "data/mosi"}})
    result = {"seed": 3, "test": {"loss": 0.5, "mae": 0.71234, "corr": float("nan")}, "best_epoch": 2,
              "epochs_run": 4, "train_time_s": 1.0}
    write_model_card(str(tmp_path), run_config, result, "mosi", {"dataset": "mosi"}, {"torch": torch.__version__}, 1)
    card = ModelCard.load(tmp_path / "README.md")
    assert [(e.metric_type, e.metric_value, e.dataset_type) for e in card.data.eval_results] == [("mae", 0.71234, "mosi")]
    assert card.data.datasets is None and "loaded from `data/mosi`" in card.text
    assert format_metric_value(0.71234, 0.01) == "0.7123 ± 0.0100" and parse_metric_value("0.7123 ± 0.0100") == (0.7123, 0.01)


# ------------------------------------------------------------------------------------- the real Hub


@pytest.mark.skipif(not (os.environ.get("MSA_TEST_REAL_HUB") == "1" and os.environ.get("HF_TOKEN")),
                    reason="pushes to the real Hub: set MSA_TEST_REAL_HUB=1 and HF_TOKEN (maintainers only)")
def test_real_hub_round_trip(workdir, runs, mmsa_pickles):
    """Push a private model and dataset to the account of HF_TOKEN, load them back, delete both repos."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HOME", "HF_HUB_CACHE", "HF_DATASETS_CACHE")}
    env.update(HF_HOME=str(workdir / "home_real"), HF_HUB_OFFLINE="0", HF_DATASETS_OFFLINE="0")
    worker = start_worker(workdir, "real", env, True)
    suffix = uuid.uuid4().hex[:8]
    try:
        result = run(worker, f"""
from huggingface_hub import HfApi, ModelCard
from modeling.converters import convert_mmsa_pickle, push_dataset_to_hub
from modeling.hub import load_hub_msa_dataset
from modeling.push import main as push
api = HfApi()
user = api.whoami()["name"]
model_repo, data_repo = f"{{user}}/msa-test-model-{suffix}", f"{{user}}/msa-test-data-{suffix}"
try:
    push([{str(runs["misa"] / "seed_1" / "best")!r}, model_repo, "--private"])
    loaded = check_model(model_repo, {str(runs["misa"] / "io.pt")!r})
    evals = len(ModelCard.load(model_repo).data.eval_results)
    dataset, metadata = convert_mmsa_pickle({str(mmsa_pickles["aligned_50"])!r}, dataset_name="mosi")
    push_dataset_to_hub(dataset, metadata, data_repo, "aligned_50", private=True)
    back, back_metadata = load_hub_msa_dataset(data_repo, "aligned_50")
    result = {{"loaded": loaded, "evals": evals, "rows": len(back["train"]), "dims": back_metadata["feature_dims"]}}
finally:
    for repo, kind in ((model_repo, "model"), (data_repo, "dataset")):
        api.delete_repo(repo, repo_type=kind, missing_ok=True)
""", timeout=600)
    finally:
        worker.stop()
    assert result["loaded"]["max_diff"] < 1e-6 and result["evals"] == 3
    assert result["rows"] == 5 and result["dims"] == {"audio": 5, "vision": 20}
