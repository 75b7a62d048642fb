"""The GRU4Rec training step (gru4rec_step: gather, input projection, gru_step, sampled loss and
their backward) at GRU4Rec's published settings: achieved GFLOP/s against this machine's
large-GEMM rate, and time against the same step written with the reference ops and autograd
(row gradients through index_select, as the fused step returns them), measured in one run.

    python bench/bench_gru4rec_step.py [--device cpu|cuda] [--repeats 20]

FLOPs counted: the matrix products of forward and backward: 18BH^2 (GRU), 6BMH (scores,
M = B + S), 18BH^2 (the constrained embedding's input projection, H x 3H).
"""

from __future__ import annotations

import os
import sys

import torch

import seqrec_ext
from seqrec_ext import GRU4RecParams, gru4rec_step, reference

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import gemm_gflops, op_bench_parser, run_facts, time_interleaved  # noqa: E402

# name, B, H, S, loss, embedding, bpreg, elu, logq (GRU4Rec's published settings)
CONFIGS = [
    ("defaults (bpr-max)", 32, 100, 2048, "bpr-max", "constrained", 1.0, 0.5, 0.0),
    ("RetailRocket (bpr-max)", 80, 224, 2048, "bpr-max", "constrained", 1.95, 0.5, 0.0),
    ("Rees46 (xe + logQ)", 240, 512, 2048, "cross-entropy", "constrained", 0.0, 0.0, 1.0),
]
N_ITEMS = 20_000


def setup(B, H, S, embedding, device):
    g = torch.Generator().manual_seed(0)

    def rnd(*s):
        return (torch.randn(*s, generator=g) * 0.1).to(device)

    p = GRU4RecParams(
        w_hh=rnd(3 * H, H),
        b_h=rnd(3 * H),
        out_table=rnd(N_ITEMS, H),
        out_bias=rnd(N_ITEMS),
        w_in=rnd(H, 3 * H),
        embedding=embedding,
    )
    ids = torch.randint(0, N_ITEMS, (B,), generator=g).to(device)
    targets = torch.randint(0, N_ITEMS, (B,), generator=g).to(device)
    negs = torch.randint(0, N_ITEMS, (S,), generator=g).to(device)
    h = rnd(B, H)
    counts = torch.randint(1, 1000, (N_ITEMS,), generator=g).float().to(device)
    return p, ids, targets, negs, h, counts.log()


def reference_step(p, ids, targets, negs, h, loss, bpreg, elu, logq_corr):
    """The same step with the reference ops; leaves are the gathered rows and the dense params."""
    out_ids = torch.cat([targets, negs])
    in_rows = p.out_table[ids].detach().requires_grad_()
    out_rows = p.out_table[out_ids].detach().requires_grad_()
    bias_rows = p.out_bias[out_ids].detach().requires_grad_()
    w_hh, b_h, w_in = (t.detach().requires_grad_() for t in (p.w_hh, p.b_h, p.w_in))
    h_new = reference.gru_step(in_rows @ w_in, h, w_hh, b_h)
    value = reference.sampled_ranking_loss(
        h_new, out_rows, bias_rows, loss=loss, bpreg=bpreg, elu_param=elu, logq_correction=logq_corr
    )
    return torch.autograd.grad(value, [in_rows, out_rows, bias_rows, w_hh, b_h, w_in])


def main():
    parser = op_bench_parser(__doc__, repeats=20)
    args = parser.parse_args()
    device = args.device
    peak = gemm_gflops(device)
    print(run_facts(device, args.repeats, peak))
    print()
    print("| setting | B | H | S | loss | fused step ms | reference step ms | speed-up | fused GFLOP/s | % of GEMM |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for name, B, H, S, loss, embedding, bpreg, elu, logq in CONFIGS:
        p, ids, targets, negs, h, log_counts = setup(B, H, S, embedding, device)
        logq_corr = (
            seqrec_ext.logq_correction(log_counts, targets, negs, logq=logq, alpha=0.5)
            if loss == "cross-entropy"
            else None
        )
        kw = dict(loss=loss, bpreg=bpreg, elu_param=elu, logq_correction=logq_corr)
        t = time_interleaved(
            {
                "fused": lambda: gru4rec_step(p, ids, targets, negs, h, **kw),
                "reference": lambda: reference_step(p, ids, targets, negs, h, loss, bpreg, elu, logq_corr),
            },
            device,
            repeats=args.repeats,
        )
        M = B + S
        flops = 18 * B * H * H + 6 * B * M * H + 6 * B * H * 3 * H
        gflops = flops / t["fused"] / 1e9
        print(
            f"| {name} | {B} | {H} | {S} | {loss} | {t['fused'] * 1e3:.2f} | {t['reference'] * 1e3:.2f} "
            f"| {t['reference'] / t['fused']:.2f}x | {gflops:.0f} | {100 * gflops / peak:.0f}% |",
            flush=True,
        )


if __name__ == "__main__":
    main()
