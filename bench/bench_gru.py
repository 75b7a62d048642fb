"""GRU ops benchmark: fused gru_step / gru_sequence against the pure-PyTorch reference, eager and
torch.compile'd, forward and forward+backward, and the fused op's GFLOP/s against this machine's
large-GEMM GFLOP/s, all measured in one run.

    python bench/bench_gru.py [--device cpu|cuda] [--variant reset_before|reset_after|both]

FLOPs counted: the matrix products only (forward 6BH^2 per step, forward+backward 18BH^2).
"""

from __future__ import annotations

import os
import sys

import torch

import seqrec_ext
from seqrec_ext import reference

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import gemm_gflops, op_bench_parser, run_facts, time_interleaved  # noqa: E402


def step_inputs(B, H, device, grad):
    g = torch.Generator().manual_seed(0)
    gi = torch.randn(B, 3 * H, generator=g).to(device)
    h = torch.randn(B, H, generator=g).to(device)
    w = (torch.randn(3 * H, H, generator=g) / H**0.5).to(device)
    b_ih, b_hh = torch.randn(3 * H, generator=g).to(device), torch.randn(3 * H, generator=g).to(device)
    params = [gi, h, w, b_ih, b_hh]
    return [p.requires_grad_() for p in params] if grad else params


def bench_step(B, H, reset_after, device, repeats):
    fused = seqrec_ext.gru_step
    ref = reference.gru_step
    # one compiled function per mode and shape: no recompilation limit reached, no guard misses
    torch._dynamo.reset()
    ref_compiled_f = torch.compile(reference.gru_step, dynamic=False)
    ref_compiled_fb = torch.compile(reference.gru_step, dynamic=False)
    params = step_inputs(B, H, device, grad=False)
    params_g = step_inputs(B, H, device, grad=True)
    cot = torch.randn(B, H, device=device)

    def fwd(f):
        def run():
            with torch.no_grad():
                f(*params, reset_after=reset_after)

        return run

    def fwd_bwd(f):
        def run():
            out = f(*params_g, reset_after=reset_after)
            torch.autograd.backward(out, cot)

        return run

    t = time_interleaved(
        {
            "fused f": fwd(fused),
            "eager f": fwd(ref),
            "compiled f": fwd(ref_compiled_f),
            "fused fb": fwd_bwd(fused),
            "eager fb": fwd_bwd(ref),
            "compiled fb": fwd_bwd(ref_compiled_fb),
        },
        device,
        repeats=repeats,
    )
    return t


def bench_sequence(T, B, H, reset_after, device, repeats):
    params = step_inputs(B, H, device, grad=True)
    gi = torch.randn(T, B, 3 * H, device=device, requires_grad=True)
    h0, w, b_ih, b_hh = params[1:]
    cot = torch.randn(T, B, H, device=device)

    def fused():
        out, _ = seqrec_ext.gru_sequence(gi, h0, w, b_ih, b_hh, reset_after=reset_after)
        torch.autograd.backward(out, cot)

    def loop_of(gru_step):
        def run():
            h, outs = h0, []
            for t in range(T):
                h = gru_step(gi[t], h, w, b_ih, b_hh, reset_after=reset_after)
                outs.append(h)
            torch.autograd.backward(torch.stack(outs), cot)

        return run

    return time_interleaved(
        {"sequence": fused, "ref loop": loop_of(reference.gru_step), "step loop": loop_of(seqrec_ext.gru_step)},
        device,
        repeats=repeats,
    )


def profile_step(B, H, reset_after, device):
    """Where the fused step's time goes (torch.profiler, self time per op)."""
    gi, h, w, b_ih, b_hh = step_inputs(B, H, device, grad=True)
    cot = torch.randn(B, H, device=device)

    def run():
        torch.autograd.backward(seqrec_ext.gru_step(gi, h, w, b_ih, b_hh, reset_after=reset_after), cot)

    for _ in range(20):
        run()
    with torch.profiler.profile() as prof:
        for _ in range(100):
            run()
    print(
        f"profile of fused gru_step forward+backward, B={B} H={H} "
        f"{'reset_after' if reset_after else 'reset_before'} (100 calls):"
    )
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


def main():
    parser = op_bench_parser(__doc__, repeats=30)
    parser.add_argument("--variant", default="both", choices=["reset_before", "reset_after", "both"])
    parser.add_argument("--T", type=int, default=50)
    parser.add_argument("--profile", action="store_true", help="only profile the fused step at B=32, H=100")
    args = parser.parse_args()
    if args.profile:
        profile_step(32, 100, False, args.device)
        return
    device = args.device
    variants = {"reset_before": [False], "reset_after": [True], "both": [False, True]}[args.variant]
    peak = gemm_gflops(device)
    print(run_facts(device, args.repeats, peak))
    print()
    print("gru_step: time per call in µs; speed-up = reference time / fused time")
    print()
    print(
        "| variant | B | H | fwd fused | fwd vs eager | fwd vs compiled | fwd+bwd fused | fwd+bwd vs eager "
        "| fwd+bwd vs compiled | fused fwd+bwd GFLOP/s | % of GEMM |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for reset_after in variants:
        name = "reset_after" if reset_after else "reset_before"
        for B in (32, 128, 512):
            for H in (100, 224, 512):
                t = bench_step(B, H, reset_after, device, args.repeats)
                gflops = 18 * B * H * H / t["fused fb"] / 1e9
                print(
                    f"| {name} | {B} | {H} | {t['fused f'] * 1e6:.0f} | {t['eager f'] / t['fused f']:.2f}x "
                    f"| {t['compiled f'] / t['fused f']:.2f}x | {t['fused fb'] * 1e6:.0f} "
                    f"| {t['eager fb'] / t['fused fb']:.2f}x | {t['compiled fb'] / t['fused fb']:.2f}x "
                    f"| {gflops:.1f} | {100 * gflops / peak:.0f}% |",
                    flush=True,
                )
    print()
    print(
        f"gru_sequence over T = {args.T}, forward+backward: time in ms; speed-up against a Python loop "
        "of eager reference steps and against a loop of fused gru_step calls"
    )
    print()
    print("| variant | B | H | sequence ms | vs reference loop | vs gru_step loop | GFLOP/s | % of GEMM |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for reset_after in variants:
        name = "reset_after" if reset_after else "reset_before"
        for B, H in ((32, 100), (128, 224), (512, 512)):
            t = bench_sequence(args.T, B, H, reset_after, device, max(5, args.repeats // 5))
            gflops = 18 * args.T * B * H * H / t["sequence"] / 1e9
            print(
                f"| {name} | {B} | {H} | {t['sequence'] * 1e3:.2f} | {t['ref loop'] / t['sequence']:.2f}x "
                f"| {t['step loop'] / t['sequence']:.2f}x | {gflops:.1f} | {100 * gflops / peak:.0f}% |",
                flush=True,
            )


if __name__ == "__main__":
    main()
