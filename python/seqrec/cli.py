"""Command line: ``seqrec gru4rec ...`` (seqrec.gru4rec.cli) and ``seqrec cosernn ...``
(seqrec.cosernn.cli).

    seqrec gru4rec train --dataset ml-100k --epochs 3 --save model.pt
    seqrec gru4rec train --dataset events.tsv --loss cross-entropy --logq 1 --layers 512 ...
    seqrec gru4rec evaluate --load model.pt --dataset ml-100k
    seqrec cosernn train --dataset synthetic --synthetic-users 500 --save cosernn.pt
"""

from __future__ import annotations

import os
import sys

from .cli_options import ExactParser
from .cosernn import cli as cosernn_cli
from .gru4rec import cli as gru4rec_cli

# what a user's input can cause (bad data, a bad file, a missing package, a diverging run): one
# line on stderr, exit status 2; anything else is a bug and keeps its traceback
USER_ERRORS = (ValueError, OSError, ImportError, FloatingPointError)


class UserError(SystemExit):
    """Exit status 2 after ``seqrec: error: MESSAGE`` on stderr (``str()`` is the message)."""

    def __init__(self, message: str):
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _lost_peers(err: BaseException) -> bool:
    """Whether ``err`` is a data-parallel job losing its other processes (a peer that died,
    was killed or timed out): torch's distributed errors, or the transport's own messages."""
    try:
        import torch.distributed as dist
    except ImportError:
        return False
    if isinstance(err, getattr(dist, "DistError", ())):
        return True
    text = str(err)
    return isinstance(err, RuntimeError) and any(
        marker in text for marker in ("Connection closed by peer", "Connection reset by peer")
    )


def _fail(message: str) -> UserError:
    message = " ".join(message.splitlines())  # one line, whatever the raiser wrote
    message = message if message.startswith("seqrec: error: ") else f"seqrec: error: {message}"
    print(message, file=sys.stderr)
    return UserError(message)


def main(argv=None) -> int:
    """The command line. A user error (a bad option value, a bad or missing file, a diverging
    run) ends with one line ``seqrec: error: ...`` on stderr and exit status 2, also when the
    code below said it with ``SystemExit("message")``; ``SEQREC_DEBUG=1`` shows the traceback
    instead. Interrupted (Ctrl-C): exit status 130."""
    parser = ExactParser(prog="seqrec", description="Session-based recommenders on seqrec_ext")
    models = parser.add_subparsers(dest="model", required=True)
    gru4rec_train = gru4rec_cli.add_parser(models)
    cosernn_cli.add_parser(models)
    args = parser.parse_args(argv)
    if getattr(args, "preset", None):  # the preset's values, then the command line's again on top
        gru4rec_cli.use_preset(gru4rec_train, args.preset)
        args = parser.parse_args(argv)
    debug = os.environ.get("SEQREC_DEBUG", "") not in ("", "0")
    try:
        return (cosernn_cli if args.model == "cosernn" else gru4rec_cli).run(args)
    except UserError:
        raise
    except SystemExit as done:
        if isinstance(done.code, str) and not debug:  # a message: a user error said where it was found
            raise _fail(done.code) from None
        raise
    except USER_ERRORS as err:
        if debug:
            raise
        raise _fail(str(err) or type(err).__name__) from err
    except RuntimeError as err:
        if debug or not _lost_peers(err):
            raise
        rank, world = os.environ.get("RANK", "?"), os.environ.get("WORLD_SIZE", "?")
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise _fail(
            f"process {rank} of {world} lost the other processes of the job ({first}): one of them failed, "
            "was killed or timed out -- its own output, and torchrun's summary, say which and why"
        ) from err
    except KeyboardInterrupt:
        if debug:
            raise
        print("seqrec: interrupted", file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":
    sys.exit(main())
