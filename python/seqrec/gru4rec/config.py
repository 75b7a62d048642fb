"""GRU4Rec's hyper-parameters: the configuration with its checks and rules, the training
precisions, and the published best settings per data set."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Optional, Tuple

import torch

# The best hyper-parameters GRU4Rec's authors published for six data sets (the parameter files
# of the official PyTorch implementation, github.com/hidasib/GRU4Rec_PyTorch_Official,
# paramfiles/*_best.py): all with the shared embedding, 2048 negatives and 10 epochs.
PRESET_FIELDS = (
    "loss",
    "hidden",
    "batch_size",
    "dropout_embed",
    "dropout_hidden",
    "learning_rate",
    "momentum",
    "sample_alpha",
    "bpreg",
    "elu_param",
    "logq",
)
PRESETS = {
    name: dict(zip(PRESET_FIELDS, values))
    for name, values in {
        "rsc15": ("cross-entropy", 100, 32, 0.0, 0.4, 0.2, 0.2, 0.5, 0.0, 0.0, 1.0),
        "yoochoose": ("cross-entropy", 480, 48, 0.0, 0.2, 0.07, 0.0, 0.2, 0.0, 0.0, 1.0),
        "rees46": ("cross-entropy", 512, 240, 0.45, 0.0, 0.065, 0.0, 0.5, 0.0, 0.0, 1.0),
        "coveo": ("bpr-max", 512, 144, 0.35, 0.0, 0.05, 0.4, 0.2, 1.85, 1.0, 0.0),
        "retailrocket": ("bpr-max", 224, 80, 0.5, 0.05, 0.05, 0.4, 0.4, 1.95, 0.5, 0.0),
        "diginetica": ("bpr-max", 512, 128, 0.5, 0.3, 0.05, 0.15, 0.3, 0.9, 1.0, 0.0),
    }.items()
}
PRESET_COMMON = dict(embedding="constrained", n_sample=2048)


# the training step's precisions: the dtype of the hidden state (None: the parameters')
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


@dataclass
class GRU4RecConfig:
    """GRU4Rec's hyper-parameters (names as in its reference implementation where they exist).

    ``embedding``: ``constrained`` (the published default, "shared": the output table is also
    the input embedding), ``separate`` (an input table of width ``embedding_size``) or ``none``
    (the item table holds each item's GRU input projection). ``reset_after``: the cell;
    None picks the published one: torch.nn.GRUCell's (reset after the hidden product, two
    biases) for constrained and separate, GRU4Rec's own cell (reset before it, one bias) for
    none. In mode none the published code applies ``dropout_embed`` to the first GRU layer's
    output (that layer is the embedding), so with one layer ``dropout_hidden`` has nothing to
    act on there and is refused.

    ``layers``: the sizes of stacked GRU layers below the top one (bottom first); the top layer
    has ``hidden`` units and feeds the output table. ``--layers 100,100`` on the command line is
    ``layers=(100,), hidden=100``. The layers above the first are torch.nn.GRUCell's cell (two
    biases; ``reset_after=False`` makes them GRU4Rec's own cell with one), each fed the
    dropped-out output of the one below (``dropout_hidden``), each with a state of its own."""

    hidden: int = 100
    loss: str = "bpr-max"
    bpreg: float = 1.0
    elu_param: float = 0.5
    logq: float = 0.0
    n_sample: int = 2048
    sample_alpha: float = 0.5
    batch_size: int = 32
    dropout_embed: float = 0.0
    dropout_hidden: float = 0.0
    learning_rate: float = 0.05
    momentum: float = 0.0
    embedding: str = "constrained"  # constrained | separate | none
    embedding_size: int = 0  # for "separate"
    reset_after: Optional[bool] = None
    seed: int = 0
    layers: Tuple[int, ...] = ()
    # the training step's arithmetic: fp32, or bf16 (a bfloat16 hidden state: the step's large
    # matrix products in bfloat16 with float32 accumulation, everything else and the parameters
    # float32; one GRU layer). Evaluation and inference stay float32.
    precision: str = "fp32"

    def __post_init__(self):
        self.layers = tuple(int(n) for n in self.layers)
        if self.hidden < 1 or any(n < 1 for n in self.layers):
            raise ValueError(f"layer sizes must be >= 1, got {(*self.layers, self.hidden)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.precision != "fp32" and self.layers:
            raise ValueError("--precision bf16 trains one GRU layer (stacked layers train in fp32)")
        self._check_ranges()
        self.check_memory(0)  # what does not depend on the catalogue; GRU4Rec checks the rest

    def _check_ranges(self) -> None:
        """Every number in its range, named as the command line names it (a tune space's values
        go through here too)."""

        def option(name: str) -> str:
            return "--" + {"dropout_embed": "dropout-p-embed", "dropout_hidden": "dropout-p-hidden"}.get(
                name, name.replace("_", "-")
            )

        def finite(name: str, low: float, high: float = math.inf, high_open: bool = False) -> None:
            value = getattr(self, name)
            ok = math.isfinite(value) and low <= value and (value < high if high_open else value <= high)
            if not ok:
                bound = f"< {high:g}" if high_open else (f"<= {high:g}" if math.isfinite(high) else "")
                raise ValueError(f"{option(name)} must be a finite number >= {low:g} {bound}, got {value!r}".strip())

        for name, low in (("n_sample", 0), ("batch_size", 1), ("embedding_size", 0), ("seed", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"{option(name)} must be a whole number >= {low}, got {getattr(self, name)}")
        for name in ("bpreg", "elu_param", "logq", "sample_alpha"):
            finite(name, 0.0)
        for name in ("dropout_embed", "dropout_hidden", "momentum"):
            finite(name, 0.0, 1.0, high_open=True)
        finite("learning_rate", 0.0)
        if self.learning_rate == 0:
            raise ValueError(f"--learning-rate must be > 0, got {self.learning_rate!r}")

    def memory_needed(self, n_items: int) -> dict:
        """Bytes (float32) that the parameters with GRU4Rec's optimizer state (three copies)
        and a training step's largest buffers (the B x (B + n_sample) scores, their gradients
        and the loss's statistics; the negatives drawn for NEGATIVE_CACHE_STEPS steps) take,
        for a catalogue of ``n_items`` items: {what: bytes}."""
        H, top, E = self.sizes[0], self.hidden, self.embedding_size
        params = n_items * top + n_items  # out_table, out_bias
        params += {"none": n_items * 3 * H, "separate": n_items * E + E * 3 * H}.get(self.embedding, top * 3 * H)
        for below, size in zip((None, *self.sizes[:-1]), self.sizes):
            params += 3 * size * size + 6 * size + (0 if below is None else below * 3 * size)
        B, S = self.batch_size, self.n_sample
        return {
            "the parameters and their optimizer state (--hidden, --layers, --embedding-size)": 3 * 4 * params,
            "a training step's scores (--batch-size, --n-sample)": 4 * 4 * B * (B + S) + 8 * 256 * S,
        }

    def check_memory(self, n_items: int, device="cpu") -> None:
        """ValueError naming the options when the model or its training step (``memory_needed``)
        needs more than the memory of ``device`` -- this machine's for the CPU, the GPU's own for
        a CUDA device: refused before anything is allocated (an allocation that large fails
        inside torch, or the kernel kills the process)."""
        device = torch.device(device)
        if device.type == "cuda" and torch.cuda.is_available():
            total, where = torch.cuda.get_device_properties(device).total_memory, f"this GPU ({device})"
        else:
            try:
                total, where = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "this machine"
            except (ValueError, OSError, AttributeError):  # not a POSIX system: nothing to compare with
                return
        for what, needed in self.memory_needed(n_items).items():
            if needed > total:
                raise ValueError(
                    f"{what} need {needed / 2**30:,.1f} GiB"
                    + (f" for {n_items:,} items" if n_items else "")
                    + f"; {where} has {total / 2**30:,.1f} GiB of memory"
                )

    @property
    def score_elu(self) -> float:
        """The ELU on the output scores, the one rule of training, evaluation, recommendation and
        export: the published trainer applies ``elu_param`` inside its ranking losses (bpr-max,
        top1-max) only, so with cross-entropy (and whenever ``elu_param`` is 0) it is 0."""
        return float(self.elu_param) if self.elu_param > 0 and self.loss in ("bpr-max", "top1-max") else 0.0

    @property
    def sizes(self) -> Tuple[int, ...]:
        """Every GRU layer's size, bottom first."""
        return (*self.layers, self.hidden)

    @property
    def upper_reset_after(self) -> bool:
        """The cell of the layers above the first: GRUCell's unless reset_after says otherwise."""
        return True if self.reset_after is None else bool(self.reset_after)

    @property
    def cell_reset_after(self) -> bool:
        return self.embedding != "none" if self.reset_after is None else bool(self.reset_after)

    @property
    def two_biases(self) -> bool:
        """torch.nn.GRUCell's hidden bias b_hh beside the input bias: the reset-after cell of
        the embedding modes that use one."""
        return self.cell_reset_after and self.embedding != "none"
