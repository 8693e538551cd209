"""Push a trained checkpoint to the Hugging Face Hub (or the Hub/mirror that ``HF_ENDPOINT`` names).

    python -m modeling.push runs/dlf_mosi/seed_1111/best org/dlf-mosi [--private] [--revision v1]
    python -m modeling.push runs/dlf_mosi org/dlf-mosi          # a run's output_dir: its best seed

The repo gets ``model.safetensors``, ``config.json`` with ``auto_map``, the model code (so that
``AutoModel.from_pretrained(repo, trust_remote_code=True)`` works without this package) and a model card
built from the run's results (mean ± std over seeds). Log in first (``hf auth login``) or set ``HF_TOKEN``.
"""

from __future__ import annotations

import argparse
import sys

from huggingface_hub.errors import OfflineModeIsEnabled

from .hub import push_checkpoint


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m modeling.push", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="checkpoint folder (<output_dir>/seed_<n>/best) or a run's output_dir")
    parser.add_argument("repo_id", help="target model repo, org/name")
    parser.add_argument("--private", action="store_true", help="create the repo as private")
    parser.add_argument("--revision", help="push to this branch (created when missing) instead of main")
    parser.add_argument("--commit-message", default="Upload trained model")
    args = parser.parse_args(argv)
    try:
        url = push_checkpoint(args.checkpoint, args.repo_id, private=args.private or None, revision=args.revision,
                              commit_message=args.commit_message)
    except (ValueError, FileNotFoundError, OfflineModeIsEnabled) as err:
        parser.exit(2, f"error: {err}\n")
    print(f"pushed {args.checkpoint} to {args.repo_id}: {url}")
    return url


if __name__ == "__main__":
    main(sys.argv[1:])
