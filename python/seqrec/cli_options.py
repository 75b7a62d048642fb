"""Command-line option types both models' command lines use (checked before any data is read,
with a message that names the option)."""

from __future__ import annotations

import argparse
import math
import os


def whole_number(text: str) -> int:
    """A count >= 1 (--threads, -k, --cutoffs, --trials ...), checked before any data is read."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def thread_count(text: str) -> int:
    """--threads: a whole number from 1 to the machine's cores (more threads than cores only
    wait for each other; tens of thousands crash inside torch)."""
    value = whole_number(text)
    cores = os.cpu_count() or 1
    if value > cores:
        raise argparse.ArgumentTypeError(f"must be at most {cores} (this machine's cores), got {value}")
    return value


def days(text: str) -> float:
    """A span of days (--test-days, --valid-days): a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number of days >= 0, got {text!r}")
    return value


def positive_days(text: str) -> float:
    """A span of days that must hold something (--valid-days): a finite number > 0."""
    value = days(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of days > 0, got {text!r}")
    return value


def seconds(text: str) -> float:
    """A span of seconds (--session-gap): a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, got {text!r}")
    return value


def device(text: str) -> str:
    """--device: a device torch knows (cpu, cuda, cuda:N) that this machine has."""
    import torch

    try:
        parsed = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"not a device: {text!r} (cpu, cuda or cuda:N)") from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise argparse.ArgumentTypeError(f"{text!r}: no CUDA GPU is visible here (this torch: {torch.__version__})")
        if parsed.index is not None and parsed.index >= count:
            raise argparse.ArgumentTypeError(f"{text!r}: this machine has {count} CUDA GPU(s)")
    elif parsed.type != "cpu":
        raise argparse.ArgumentTypeError(f"{text!r}: the models run on cpu or cuda")
    return text


class ExactParser(argparse.ArgumentParser):
    """An ArgumentParser that takes option names exactly: argparse's default prefix matching
    would read ``--log metrics.jsonl`` as ``--logq metrics.jsonl``. Subcommands' parsers inherit
    the class (``add_subparsers`` builds them with the parser's own)."""

    def __init__(self, *args, allow_abbrev: bool = False, **kwargs):
        super().__init__(*args, allow_abbrev=allow_abbrev, **kwargs)


TRAINING_THREADS = (
    "intra-op threads (default: picked by timing the training steps, as the machine's load "
    "allows; fix it for runs, and resumed runs, that repeat bit for bit)"
)
SCORING_THREADS = "intra-op threads (default: torch's own count; on a busy machine, fewer can be faster)"


def add_threads_option(parser: argparse.ArgumentParser, help: str = TRAINING_THREADS) -> None:
    """--threads N: the intra-op thread count (for the trainers, default: their ThreadTuner's
    choice; ``help`` says what the command does without it)."""
    parser.add_argument("--threads", type=thread_count, default=None, help=help)


def add_dist_timeout_option(parser: argparse.ArgumentParser) -> None:
    """--dist-timeout SECONDS: under torchrun, how long a process waits in a collective for the
    others before it fails (a dead peer ends the job instead of hanging it)."""
    parser.add_argument(
        "--dist-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="under torchrun: how long a process waits for the others before it fails (default 300)",
    )


def add_metric_log_options(parser: argparse.ArgumentParser, lines: str) -> None:
    """--log FILE.jsonl and --tensorboard DIR (seqrec.metric_log); ``lines``: what a line holds."""
    parser.add_argument("--log", metavar="FILE.jsonl", help=f"one JSON line {lines}")
    parser.add_argument(
        "--tensorboard", metavar="DIR", help="the same numbers as TensorBoard scalars (needs tensorboard installed)"
    )
