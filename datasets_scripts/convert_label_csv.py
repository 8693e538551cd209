r"""Convert an MMSA label.csv (text + labels, no acoustic/visual features) to the shared dataset layout.

The output has no audio/vision columns (metadata "modalities": ["text"]).

    python datasets_scripts/convert_label_csv.py MOSI/label.csv --tokenizer path/to/bert-base-uncased \
        --output data/mosi_text [--max-length 50] [--push-to-hub org/name --config-name text]
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modeling.converters import add_output_arguments, convert_label_csv, finish_cli  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="label.csv")
    parser.add_argument("--tokenizer", required=True, help="local tokenizer folder")
    parser.add_argument("--max-length", type=int, default=50, help="max token ids incl. [CLS]/[SEP]")
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    dataset, metadata = convert_label_csv(args.input, args.tokenizer, max_length=args.max_length,
                                          dataset_name=args.dataset)
    finish_cli(dataset, metadata, args)


if __name__ == "__main__":
    main()
