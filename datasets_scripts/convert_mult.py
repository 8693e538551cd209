r"""Convert a MulT / CMU processed-data pickle (mosi_data.pkl, mosei_senti_data_noalign.pkl, ...).

The file holds GloVe text vectors (stored as `text_features`), not token ids: `input_ids` stay empty unless
`--label-csv` (an MMSA label.csv, joined by video id and start time or segment order) and `--tokenizer`
(a local tokenizer folder) are given.

    python datasets_scripts/convert_mult.py mosi_data_noalign.pkl --output data/mosi_mult \
        [--label-csv MOSI/label.csv --tokenizer path/to/bert-base-uncased] [--push-to-hub org/name --config-name mult]
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modeling.converters import add_output_arguments, convert_mult_pickle, finish_cli  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="MulT .pkl file")
    layout = parser.add_mutually_exclusive_group()
    layout.add_argument("--aligned", dest="aligned", action="store_true", default=None, help="force word-aligned")
    layout.add_argument("--unaligned", dest="aligned", action="store_false", help="force unaligned")
    parser.add_argument("--label-csv", default=None, help="MMSA label.csv giving transcripts and clip ids")
    parser.add_argument("--tokenizer", default=None, help="local tokenizer folder (needs --label-csv)")
    parser.add_argument("--max-length", type=int, default=50, help="max token ids incl. [CLS]/[SEP]")
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    dataset, metadata = convert_mult_pickle(
        args.input, aligned=args.aligned, dataset_name=args.dataset, label_csv=args.label_csv,
        tokenizer=args.tokenizer, max_length=args.max_length,
    )
    finish_cli(dataset, metadata, args)


if __name__ == "__main__":
    main()
