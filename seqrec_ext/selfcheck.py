"""``python -m seqrec_ext.selfcheck``: everything a first GPU must check, in one command, written
to one Markdown report.

1. the build (``python -m seqrec_ext``'s facts);
2. every op on realistic shapes: on a GPU against the same op on the CPU (values, gradients,
   updated tables; the sampler's Philox draws bit for bit), without one the CPU kernels against
   the pure-PyTorch references;
3. with a GPU: the device-parametrised test suite on CUDA (``pytest -k cuda``, from a source
   tree), and the op microbenchmarks on the GPU (``bench/bench_*.py --device cuda``: fused
   against eager PyTorch on the same GPU, as ratios, with the achieved rates).

Without a GPU it says so, runs part 2 on the CPU and exits 0. Exit status 1 when a check fails.

    python -m seqrec_ext.selfcheck [--report selfcheck-report.md] [--skip-tests] [--skip-bench]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, List, Tuple

import torch

import seqrec_ext
from seqrec_ext import reference

# (op, what was compared, largest difference relative to the largest value, tolerance)
Check = Tuple[str, str, float, float]

BENCHES = [  # (script, arguments): a few minutes in all on one GPU
    ("bench_gru.py", ["--repeats", "10"]),
    ("bench_lstm.py", ["--repeats", "3", "--no-reference"]),
    ("bench_sampled_loss.py", ["--repeats", "10"]),
    ("bench_gru4rec_step.py", ["--repeats", "10"]),
    ("bench_adagrad_momentum.py", ["--repeats", "10"]),
    ("bench_alias_sampler.py", ["--repeats", "3"]),
    ("bench_rank_items.py", ["--repeats", "3"]),
    # GRU4Rec's training epoch in float32 and in bfloat16 (tensor cores), with their accuracy
    ("bench_gru4rec_precision.py", ["--seeds", "0", "--events", "50000", "--only", "rees46"]),
]


def _max_diff(a, b) -> float:
    if isinstance(a, (tuple, list)):
        return max((_max_diff(x, y) for x, y in zip(a, b)), default=0.0)
    if a is None and b is None:
        return 0.0
    a, b = a.detach().cpu(), b.detach().cpu()
    if a.dtype in (torch.int64, torch.bool) or b.dtype in (torch.int64, torch.bool):
        return 0.0 if torch.equal(a, b) else float("inf")
    if not a.numel():
        return 0.0
    # relative to the largest value compared (-inf top-k slots compare as equal when both are)
    a, b = a.double().nan_to_num(neginf=-1e300), b.double().nan_to_num(neginf=-1e300)
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-30))


def _inputs(seed: int):
    g = torch.Generator().manual_seed(seed)
    return lambda *shape, scale=0.4: torch.randn(*shape, generator=g) * scale


def _on(device, *tensors, grad=False):
    """Fresh leaf copies on ``device`` (each comparison side gets its own gradients)."""
    return [t.detach().to(device, copy=True).requires_grad_(grad and t.is_floating_point()) for t in tensors]


def _baseline(name: str, device):
    """What the op on ``device`` is compared with: the same op on the CPU when ``device`` is a
    GPU, else the pure-PyTorch reference."""
    return getattr(reference if device == "cpu" else seqrec_ext, name)


def _forward_backward(fn, tensors, device, cotangent=None, **options):
    args = _on(device, *tensors, grad=True)
    out = fn(*args, **options)
    value = out[0] if isinstance(out, tuple) else out
    value.backward(None if cotangent is None else cotangent.to(device))
    return value, [a.grad for a in args]


def check_gru(device) -> List[Check]:
    rnd, out = _inputs(1), []
    B, H, T = 256, 224, 20
    for reset_after in (False, True):
        # weights of a contracting recurrence: rounding differences do not grow over the steps
        tensors = (rnd(T, B, 3 * H), rnd(B, H), rnd(3 * H, H, scale=0.05), rnd(3 * H), rnd(3 * H))
        cot, cell = rnd(T, B, H), "reset after" if reset_after else "reset before"
        ref = _forward_backward(_baseline("gru_sequence", device), tensors, "cpu", cot, reset_after=reset_after)
        got = _forward_backward(seqrec_ext.gru_sequence, tensors, device, cot, reset_after=reset_after)
        out.append(("gru_sequence", f"B={B} H={H} T={T} {cell}: output", _max_diff(got[0], ref[0]), 1e-4))
        out.append(("gru_sequence", f"{cell}: gradients", _max_diff(got[1], ref[1]), 1e-3))
    return out


def check_lstm(device) -> List[Check]:
    rnd = _inputs(6)
    B, H, T = 256, 200, 20
    # weights of a contracting recurrence: rounding differences do not grow over the steps
    tensors = (rnd(T, B, 4 * H), rnd(B, H), rnd(B, H), rnd(4 * H, H, scale=0.05), rnd(4 * H), rnd(4 * H))
    cot = rnd(T, B, H)
    ref = _forward_backward(_baseline("lstm_sequence", device), tensors, "cpu", cot)
    got = _forward_backward(seqrec_ext.lstm_sequence, tensors, device, cot)
    return [
        ("lstm_sequence", f"B={B} H={H} T={T}: output", _max_diff(got[0], ref[0]), 1e-4),
        ("lstm_sequence", "gradients", _max_diff(got[1], ref[1]), 1e-3),
    ]


def check_sampled_loss(device) -> List[Check]:
    rnd, out = _inputs(2), []
    B, S, H = 240, 2048, 512
    for loss, options in (("bpr-max", dict(bpreg=1.0, elu_param=0.5)), ("top1-max", {}), ("cross-entropy", {})):
        tensors = (rnd(B, H), rnd(B + S, H), rnd(B + S))
        logq = rnd(B + S).abs() if loss == "cross-entropy" else None
        results = []
        for dev, fn in (("cpu", _baseline("sampled_ranking_loss", device)), (device, seqrec_ext.sampled_ranking_loss)):
            q = None if logq is None else logq.to(dev)
            results.append(_forward_backward(fn, tensors, dev, loss=loss, logq_correction=q, **options))
        (v_ref, g_ref), (v, g) = results
        out.append(("sampled_ranking_loss", f"{loss} B={B} S={S} H={H}: loss", _max_diff(v, v_ref), 1e-4))
        out.append(("sampled_ranking_loss", f"{loss}: gradients", _max_diff(g, g_ref), 1e-4))
    return out


def check_adagrad(device) -> List[Check]:
    rnd = _inputs(3)
    N, D, K = 100_000, 100, 2080
    table, grads = rnd(N, D), rnd(K, D)
    rows = torch.randint(0, 5000, (K,), generator=torch.Generator().manual_seed(3))  # repeats
    results = []
    for dev, fn in (
        ("cpu", _baseline("sparse_adagrad_momentum_", device)),
        (device, seqrec_ext.sparse_adagrad_momentum_),
    ):
        state = [t.clone().to(dev) for t in (table, torch.zeros(N, D), torch.zeros(N, D))]
        for _ in range(3):
            fn(*state, rows.to(dev), grads.to(dev), lr=0.05, momentum=0.4)
        results.append(state)
    return [("sparse_adagrad_momentum_", f"N={N} D={D} K={K}, 3 steps: table and state", _max_diff(*results), 1e-5)]


def check_sampler(device) -> List[Check]:
    counts = torch.arange(1, 1_000_001, dtype=torch.float64).pow(-1.1)
    prob, alias = seqrec_ext.alias_build(counts)
    cpu = torch.ops.seqrec.alias_draw_philox(prob, alias, 1 << 20, 12345, 7)
    if device == "cpu":
        again = torch.ops.seqrec.alias_draw_philox(prob, alias, 1 << 20, 12345, 7)
        return [
            ("alias_draw_philox", "10^6 items, 2^20 draws: the same key and offset twice", _max_diff(again, cpu), 0)
        ]
    dev = torch.ops.seqrec.alias_draw_philox(prob.to(device), alias.to(device), 1 << 20, 12345, 7)
    return [("alias_draw_philox", "10^6 items, 2^20 draws: CUDA against CPU, bit for bit", _max_diff(dev, cpu), 0)]


def check_rank_items(device) -> List[Check]:
    rnd = _inputs(4)
    B, N, H = 512, 100_000, 100
    h, table, bias = rnd(B, H, scale=1.0), rnd(N, H, scale=0.1), rnd(N)
    targets = torch.randint(0, N, (B,), generator=torch.Generator().manual_seed(4))
    exclude = targets.view(B, 1)
    ref = _baseline("rank_items", device)(h, table, bias, targets=targets, k=100, exclude=exclude, elu_param=0.5)
    got = seqrec_ext.rank_items(
        *_on(device, h, table, bias), targets=targets.to(device), k=100, exclude=exclude.to(device), elu_param=0.5
    )
    # rank counts may differ where a score lies within rounding of the target's (GEMM blocking)
    counts = float(max((got[i].cpu() - ref[i].cpu()).abs().max() for i in (0, 1)))
    return [
        ("rank_items", f"B={B} N={N} H={H}: rank counts", counts, 2),
        ("rank_items", "top-100 scores", _max_diff(got[3], ref[3]), 1e-4),
    ]


def check_train_step(device) -> List[Check]:
    from seqrec_ext import GRU4RecParams, gru4rec_train_step_, train_step_param_names

    rnd = _inputs(5)
    N, B, S, H = 50_000, 80, 2048, 224
    base = dict(w_hh=rnd(3 * H, H), b_h=rnd(3 * H), out_table=rnd(N, H), out_bias=rnd(N), w_in=rnd(H, 3 * H))
    g = torch.Generator().manual_seed(5)
    ids = [torch.randint(0, N, (n,), generator=g) for n in (B, B, S)]
    h = rnd(B, H)
    results = []
    for dev in ("cpu", device):
        params = GRU4RecParams(embedding="constrained", **{k: v.clone().to(dev) for k, v in base.items()})
        names = train_step_param_names("constrained", False)
        state = [[torch.zeros_like(getattr(params, n)) for n in names] for _ in range(2)]
        loss, h_new = gru4rec_train_step_(
            params, *state, *(i.to(dev) for i in ids), h.to(dev), loss="bpr-max", bpreg=1.0, lr=0.05, momentum=0.4
        )
        results.append((loss, h_new, [getattr(params, n) for n in names]))
    if device == "cpu":
        return [("gru4rec_train_step_", "CPU, twice: deterministic", _max_diff(results[0], results[1]), 0)]
    return [
        (
            "gru4rec_train_step_",
            f"N={N} B={B} S={S} H={H}: loss, state, updated parameters",
            _max_diff(results[0], results[1]),
            1e-4,
        )
    ]


CHECKS: List[Callable] = [
    check_gru,
    check_lstm,
    check_sampled_loss,
    check_adagrad,
    check_sampler,
    check_rank_items,
    check_train_step,
]


def run_checks(device) -> Tuple[List[Check], List[str]]:
    checks, errors = [], []
    for fn in CHECKS:
        try:
            checks += fn(device)
        except Exception as err:  # a crash is a failed check, reported, and the rest still run
            errors.append(f"{fn.__name__}: {type(err).__name__}: {err}")
    return checks, errors


def _run(cmd: List[str], timeout: int, cwd: Path) -> Tuple[int, str, float]:
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)
        return done.returncode, done.stdout + done.stderr, time.perf_counter() - start
    except subprocess.TimeoutExpired as err:
        text = (err.stdout or b"").decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
        return 124, text + f"\n(stopped after {timeout} s)", time.perf_counter() - start


def _source_tree() -> Path:
    """The repository root when this runs from a source tree (tests/ and bench/ beside it)."""
    for root in (Path.cwd(), Path(__file__).resolve().parent.parent):
        if (root / "tests").is_dir() and (root / "bench").is_dir():
            return root
    return Path()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--report", default="selfcheck-report.md", help="the Markdown report written")
    parser.add_argument("--skip-tests", action="store_true", help="no pytest run (GPU only)")
    parser.add_argument("--skip-bench", action="store_true", help="no microbenchmarks (GPU only)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    gpu = torch.cuda.is_available() and seqrec_ext.build_info()["with_cuda"]
    device = "cuda" if gpu else "cpu"
    lines = [f"# seqrec_ext self-check ({time.strftime('%Y-%m-%d %H:%M')})", "", "## Build", "", "```"]
    facts = io.StringIO()
    with contextlib.redirect_stdout(facts):
        from seqrec_ext.__main__ import main as facts_main

        facts_main()
    lines += [facts.getvalue().rstrip(), "```", ""]
    if not gpu:
        why = "no GPU is visible" if not torch.cuda.is_available() else "the CUDA kernels were not built"
        lines += [f"**{why}**: the CPU part only (the CPU kernels against the pure-PyTorch references).", ""]
        print(f"selfcheck: {why}; running the CPU part only")
    checks, errors = run_checks(device)
    title = "CUDA against CPU" if gpu else "CPU kernels against the references"
    lines += [
        f"## Ops: {title}",
        "",
        "| op | compared | max difference (relative) | tolerance | |",
        "|---|---|---:|---:|---|",
    ]
    failed = [c for c in checks if not c[2] <= c[3]]
    for op, what, diff, tol in checks:
        lines.append(f"| `{op}` | {what} | {diff:.3g} | {tol:g} | {'ok' if diff <= tol else '**FAILED**'} |")
    lines += [""] + [f"- **error** {e}" for e in errors] + [""]
    root, code = _source_tree(), 0
    if gpu and not args.skip_tests:
        if (root / "tests").is_dir():
            rc, text, seconds = _run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "cuda", "tests"], 300, root
            )
            summary = text.strip().splitlines()[-1] if text.strip() else "(no output)"
            lines += ["## CUDA tests (`pytest -k cuda`)", "", f"{summary} ({seconds:.0f} s)", ""]
            if rc != 0:
                code = 1
                lines += ["```", "\n".join(text.splitlines()[-60:]), "```", ""]
        else:
            lines += ["## CUDA tests", "", "skipped: run from a source tree (tests/ not found)", ""]
    if gpu and not args.skip_bench and (root / "bench").is_dir():
        lines += ["## Microbenchmarks on the GPU", ""]
        for script, extra in BENCHES:
            rc, text, seconds = _run(
                [sys.executable, str(root / "bench" / script), "--device", "cuda", *extra], 120, root
            )
            lines += [
                f"### `{script} --device cuda {' '.join(extra)}` ({seconds:.0f} s, exit {rc})",
                "",
                text.strip(),
                "",
            ]
    if failed or errors:
        code = 1
    verdict = "all checks passed" if code == 0 else f"{len(failed)} check(s) failed, {len(errors)} error(s)"
    lines += [f"**{verdict}** in {time.perf_counter() - started:.0f} s", ""]
    Path(args.report).write_text("\n".join(lines))
    print(f"selfcheck: {verdict}; report: {args.report}")
    return code


if __name__ == "__main__":
    sys.exit(main())
