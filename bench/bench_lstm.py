"""LSTM op benchmark: the fused lstm_sequence against torch.nn.LSTM and against the pure-PyTorch
reference (a Python loop of eager ops), forward+backward (and forward alone), eager, all
measured in one run at CoSeRNN's shapes (B users, T sessions, input 200, hidden H); and the
time of the matrix products alone, which every contender has to compute.

    python bench/bench_lstm.py [--device cpu|cuda] [--threads 1] [--B 32 256] [--T 100 400]
                               [--H 100 400] [--input 200] [--repeats 3] [--no-reference]
                               [--autocast bfloat16|float16]

Every contender computes the same thing from the same inputs x (T, B, I), h0, c0: the fused op
and the reference take the input projection gi = x W_ih^T from one matrix product (done by
torch, its gradients by autograd), torch.nn.LSTM does it inside (on the CPU: oneDNN's LSTM).
The cotangent is on the outputs of every step.

"products" is the time of the matrix products of one forward+backward alone (torch.mm into
preallocated outputs, from Python): the input projection, T products h W_hh^T, T products
d_gates W_hh, and the gradients of W_hh, W_ih and x over all T*B rows, 24BHT(H + I) flops in
all. No implementation that computes these products with torch's matrix product can take less;
"nn.LSTM / products" is thus the most any such op can gain on torch.nn.LSTM.
``--autocast bfloat16`` runs every contender (and the products) under ``torch.autocast`` (the
fused op and torch.nn.LSTM then multiply in bfloat16); max |Δ| stays against torch.nn.LSTM in
float32.
"""

from __future__ import annotations

import os
import sys

import torch

import seqrec_ext
from seqrec_ext import reference

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import gemm_gflops, op_bench_parser, run_facts, time_interleaved  # noqa: E402


def contenders(B, T, H, I, device, autocast):
    """The forward+backward and forward-only functions of each contender (under autocast to
    that dtype, if one is given), and the largest difference of the fused op's outputs from
    torch.nn.LSTM's in float32."""
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(I, H).to(device)
    x = torch.randn(T, B, I, device=device, requires_grad=True)
    h0 = torch.randn(B, H, device=device, requires_grad=True)
    c0 = torch.randn(B, H, device=device, requires_grad=True)
    cot = torch.randn(T, B, H, device=device)
    w_ih, w_hh, b_ih, b_hh = lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0

    def ours(op):
        def run():
            gi = (x.view(T * B, I) @ w_ih.t()).view(T, B, 4 * H)
            return op(gi, h0, c0, w_hh, b_ih, b_hh)[0]

        return run

    def nn_lstm():
        return lstm(x, (h0.unsqueeze(0), c0.unsqueeze(0)))[0]

    def under_autocast(f):
        def run():
            with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
                return f()

        return run

    forwards = {
        name: under_autocast(f)
        for name, f in (
            ("fused", ours(seqrec_ext.lstm_sequence)),
            ("nn.LSTM", nn_lstm),
            ("reference", ours(reference.lstm_sequence)),
        )
    }

    def fwd_bwd(f):
        def run():
            out = f()
            torch.autograd.backward(out, cot.to(out.dtype))

        return run

    def fwd(f):
        def run():
            with torch.no_grad():
                f()

        return run

    with torch.no_grad():
        diff = (forwards["fused"]().float() - nn_lstm()).abs().max().item()
    return {name: fwd_bwd(f) for name, f in forwards.items()}, {name: fwd(f) for name, f in forwards.items()}, diff


def products_alone(B, T, H, I, device, dtype):
    """The matrix products of one forward+backward, alone, into preallocated outputs."""
    g = torch.Generator().manual_seed(1)

    def rnd(*shape):
        return torch.randn(*shape, generator=g).to(device=device, dtype=dtype)

    x, w_ih, w_hh, hs, d_gates = rnd(T * B, I), rnd(4 * H, I), rnd(4 * H, H), rnd(T * B, H), rnd(T * B, 4 * H)
    gi, gh, dh = rnd(T * B, 4 * H), rnd(B, 4 * H), rnd(B, H)
    d_w_hh, d_w_ih, dx = rnd(4 * H, H), rnd(4 * H, I), rnd(T * B, I)

    def run():
        torch.mm(x, w_ih.t(), out=gi)
        for t in range(T):
            torch.mm(hs[t * B : (t + 1) * B], w_hh.t(), out=gh)
        for t in range(T):
            torch.mm(d_gates[t * B : (t + 1) * B], w_hh, out=dh)
        torch.mm(d_gates.t(), hs, out=d_w_hh)
        torch.mm(d_gates.t(), x, out=d_w_ih)
        torch.mm(d_gates, w_ih, out=dx)

    return run


def main():
    parser = op_bench_parser(__doc__, repeats=3)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    parser.add_argument("--B", type=int, nargs="+", default=[32, 256], help="batch sizes (users)")
    parser.add_argument("--T", type=int, nargs="+", default=[100, 400], help="steps (sessions)")
    parser.add_argument("--H", type=int, nargs="+", default=[100, 400], help="hidden sizes")
    parser.add_argument("--input", type=int, default=200, help="input size I")
    parser.add_argument("--no-reference", action="store_true", help="skip the (slow) reference")
    parser.add_argument("--autocast", choices=["bfloat16", "float16"], help="run every contender under autocast")
    args = parser.parse_args()
    autocast = getattr(torch, args.autocast) if args.autocast else None
    torch.set_num_threads(args.threads)
    device, I = args.device, args.input
    peak = gemm_gflops(device)
    print(run_facts(device, args.repeats, peak))
    print()
    where = f", under torch.autocast({args.autocast})" if autocast else ""
    print(
        f"lstm_sequence, input {I}{where}: forward+backward (fb) and forward (f) time per call; "
        "'a vs b' = b's time / a's time; max |Δ| = largest difference of the fused outputs from nn.LSTM's"
    )
    print()
    print(
        "| B | T | H | fused fb ms | nn.LSTM fb ms | reference fb ms | fused vs nn.LSTM | fused vs reference "
        "| products ms | nn.LSTM / products | fused / products | fused f ms | f: fused vs nn.LSTM "
        "| f: fused vs reference | max \\|Δ\\| |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for B in args.B:
        for T in args.T:
            for H in args.H:
                fb, f, diff = contenders(B, T, H, I, device, autocast)
                if args.no_reference:
                    del fb["reference"], f["reference"]
                fb["products"] = products_alone(B, T, H, I, device, autocast or torch.float32)
                t_fb = time_interleaved(fb, device, repeats=args.repeats, warmup=1)
                t_f = time_interleaved(f, device, repeats=args.repeats, warmup=1)

                def ms(t, name):
                    return f"{t[name] * 1e3:.1f}" if name in t else "-"

                def ratio(t, name, to="fused"):
                    return f"{t[name] / t[to]:.2f}x" if name in t else "-"

                print(
                    f"| {B} | {T} | {H} | {ms(t_fb, 'fused')} | {ms(t_fb, 'nn.LSTM')} | {ms(t_fb, 'reference')} "
                    f"| {ratio(t_fb, 'nn.LSTM')} | {ratio(t_fb, 'reference')} | {ms(t_fb, 'products')} "
                    f"| {ratio(t_fb, 'nn.LSTM', 'products')} | {ratio(t_fb, 'fused', 'products')} "
                    f"| {ms(t_f, 'fused')} | {ratio(t_f, 'nn.LSTM')} | {ratio(t_f, 'reference')} | {diff:.1e} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
