"""Command line: ``seqrec gru4rec ...`` (seqrec.gru4rec.cli) and ``seqrec cosernn ...``
(seqrec.cosernn.cli).

    seqrec gru4rec train --dataset ml-100k --epochs 3 --save model.pt
    seqrec gru4rec train --dataset events.tsv --loss cross-entropy --logq 1 --layers 512 ...
    seqrec gru4rec evaluate --load model.pt --dataset ml-100k
    seqrec cosernn train --dataset synthetic --synthetic-users 500 --save cosernn.pt
"""

from __future__ import annotations

import sys

from .cli_options import ExactParser
from .cosernn import cli as cosernn_cli
from .gru4rec import cli as gru4rec_cli


def main(argv=None) -> int:
    parser = ExactParser(prog="seqrec", description="Session-based recommenders on seqrec_ext")
    models = parser.add_subparsers(dest="model", required=True)
    gru4rec_train = gru4rec_cli.add_parser(models)
    cosernn_cli.add_parser(models)
    args = parser.parse_args(argv)
    if getattr(args, "preset", None):  # the preset's values, then the command line's again on top
        gru4rec_cli.use_preset(gru4rec_train, args.preset)
        args = parser.parse_args(argv)
    try:
        return (cosernn_cli if args.model == "cosernn" else gru4rec_cli).run(args)
    except (ValueError, FileNotFoundError, ImportError) as err:  # bad data, missing data package
        raise SystemExit(f"seqrec: error: {err}") from err


if __name__ == "__main__":
    sys.exit(main())
