"""Fused sampled scoring + ranking loss against the reference (the same formulas on the full
B x M score matrix), eager and torch.compile'd, forward and forward+backward, GFLOP/s against this
machine's large-GEMM rate, and peak memory, all measured in one run.

    python bench/bench_sampled_loss.py [--device cpu|cuda] [--repeats 10]

GFLOP/s count the useful matrix products: 2BMH forward, 6BMH forward+backward (the fused
backward recomputes the scores, another 2BMH, which is not counted).
"""

from __future__ import annotations

import os
import sys

import torch

import seqrec_ext
from seqrec_ext import reference
from seqrec_ext.sampled_loss import LOSSES

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import gemm_gflops, op_bench_parser, peak_extra_bytes, run_facts, time_interleaved  # noqa: E402

SHAPES = [(32, 2048, 100), (80, 2048, 224), (240, 2048, 512), (512, 8192, 128), (128, 65536, 100)]
COMPILED = ("bpr-max", "cross-entropy")  # GRU4Rec's two default losses; compiling all takes long


def inputs(B, S, H, device):
    g = torch.Generator().manual_seed(0)
    M = B + S
    h = torch.randn(B, H, generator=g).to(device).requires_grad_()
    W = (torch.randn(M, H, generator=g) / H**0.5).to(device).requires_grad_()
    b = torch.zeros(M).to(device).requires_grad_()
    counts = torch.randint(1, 1000, (M,), generator=g).double()
    return h, W, b, counts.log().float().to(device)


def kwargs(loss, logq):
    return dict(
        loss=loss,
        bpreg=1.0 if loss == "bpr-max" else 0.0,
        elu_param=0.5 if loss in ("bpr-max", "top1-max") else 0.0,
        logq_correction=logq if loss == "cross-entropy" else None,
    )


def profile(B, S, H, loss, device):
    """Where the fused loss's forward+backward time goes (torch.profiler, self time per op)."""
    h, W, b, logq = inputs(B, S, H, device)
    kw = kwargs(loss, logq)

    def run():
        seqrec_ext.sampled_ranking_loss(h, W, b, **kw).backward()

    for _ in range(10):
        run()
    with torch.profiler.profile() as prof:
        for _ in range(50):
            run()
    print(f"profile of the fused {loss} forward+backward, B={B} S={S} H={H} (50 calls):")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10))


def main():
    parser = op_bench_parser(__doc__, repeats=10)
    parser.add_argument("--profile", action="store_true", help="only profile bpr-max at B=32, S=2048, H=100")
    args = parser.parse_args()
    device = args.device
    if args.profile:
        profile(32, 2048, 100, "bpr-max", device)
        return
    peak = gemm_gflops(device)
    print(run_facts(device, args.repeats, peak))
    print()
    print(
        "| B | S | H | loss | fwd ms | fwd vs eager | fwd+bwd ms | fwd+bwd vs eager | fwd+bwd vs compiled "
        "| fused GFLOP/s | % of GEMM |"
    )
    print("|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for B, S, H in SHAPES:
        h, W, b, logq = inputs(B, S, H, device)
        M = B + S
        for loss in LOSSES:
            kw = kwargs(loss, logq)

            def fwd(fn):
                def run():
                    with torch.no_grad():
                        fn(h, W, b, **kw)

                return run

            def fwd_bwd(fn):
                def run():
                    fn(h, W, b, **kw).backward()

                return run

            fns = {
                "fused f": fwd(seqrec_ext.sampled_ranking_loss),
                "eager f": fwd(reference.sampled_ranking_loss),
                "fused fb": fwd_bwd(seqrec_ext.sampled_ranking_loss),
                "eager fb": fwd_bwd(reference.sampled_ranking_loss),
            }
            if loss in COMPILED:
                torch._dynamo.reset()
                fns["compiled fb"] = fwd_bwd(torch.compile(reference.sampled_ranking_loss, dynamic=False))
            t = time_interleaved(fns, device, repeats=args.repeats)
            gflops = 6 * B * M * H / t["fused fb"] / 1e9
            compiled = f"{t['compiled fb'] / t['fused fb']:.2f}x" if "compiled fb" in t else "-"
            print(
                f"| {B} | {S} | {H} | {loss} | {t['fused f'] * 1e3:.2f} | {t['eager f'] / t['fused f']:.2f}x "
                f"| {t['fused fb'] * 1e3:.2f} | {t['eager fb'] / t['fused fb']:.2f}x | {compiled} "
                f"| {gflops:.0f} | {100 * gflops / peak:.0f}% |",
                flush=True,
            )
    if device.type == "cpu":
        B, S, H = 128, 65536, 100
        setup = (
            f"torch.manual_seed(0); h = torch.randn({B}, {H}, requires_grad=True); "
            f"W = (torch.randn({B + S}, {H}) / {H}**0.5).requires_grad_(); "
            "W.grad = torch.zeros_like(W); h.grad = torch.zeros_like(h)"
        )
        print()
        print(f"Peak memory added by one forward+backward (bpr-max), B={B} S={S} H={H}, fresh process each:")
        print()
        print("| loss | fused MiB | reference MiB | fused / reference |")
        print("|---|---:|---:|---:|")
        for loss in ("bpr-max", "cross-entropy"):
            run = "{}(h, W, loss='" + loss + "').backward()"
            fused = peak_extra_bytes(setup, run.format("seqrec_ext.sampled_ranking_loss"))
            ref = peak_extra_bytes(setup, run.format("reference.sampled_ranking_loss"))
            print(f"| {loss} | {fused / 2**20:.1f} | {ref / 2**20:.1f} | {fused / ref:.3f} |")


if __name__ == "__main__":
    main()
