"""GRU4Rec training throughput and accuracy: one epoch on a synthetic log (~200k events, ~20k
items, power-law popularity, a learnable next-item signal) for (a) seqrec's GRU4Rec on the fused
ops and (b) a reference GRU4Rec built from the pure-PyTorch reference ops with
nn.Embedding(sparse=True), reference sampling (searchsorted on the cumulative distribution, as
GRU4Rec samples) and the reference Adagrad-with-momentum; same data, hyper-parameters and seed.

    python bench/bench_gru4rec_train.py [--seeds 0 1 2] [--events 200000] [--floors] [--only B=80]

The two epochs run in 50 interleaved slices (see interleaved_epochs): this shared machine's
speed drifts by tens of percent over minutes, and a ratio of two epochs run one after the
other measured the drift as much as the code. A third training of (a) on (b)'s very
negatives (its sampler and random stream) separates what sampling noise does to the accuracy
columns from what the ops do.

--floors adds, per configuration and in the same run, what no implementation of this training
step can go below on this machine: the step's matrix products alone (torch.mm at the step's
shapes, forward and backward, scores not recomputed) and its optimizer update alone (the fused
sparse Adagrad-with-momentum op on the rows a step touches), against the step time a target
speed-up over the reference allows.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

import torch

from seqrec.data import time_split
from seqrec.gru4rec import GRU4Rec, GRU4RecConfig
from seqrec.batching import session_parallel_batches
from seqrec.synthetic import synthetic_events
from seqrec_ext import GRU4RecParams, reference

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import run_facts, time_interleaved  # noqa: E402

import seqrec_ext  # noqa: E402

TARGETS = {"bpr-max B=32 H=100": 5.0, "xe+logQ B=32 H=100": 3.0, "bpr-max B=80 H=224": 3.0}  # issue 5

CONFIGS = [
    ("bpr-max B=32 H=100", dict(loss="bpr-max", batch_size=32, hidden=100, bpreg=1.0, elu_param=0.5)),
    ("xe+logQ B=32 H=100", dict(loss="cross-entropy", batch_size=32, hidden=100, bpreg=0.0, elu_param=0.0, logq=1.0)),
    ("bpr-max B=80 H=224", dict(loss="bpr-max", batch_size=80, hidden=224, bpreg=1.95, elu_param=0.5)),
]


class SearchsortedSampler:
    """GRU4Rec's own way to draw negatives, as the reference trainer does: uniform draws looked
    up in the cumulative distribution of count^alpha."""

    def __init__(self, counts, alpha):
        weights = counts.pow(alpha)
        self.cdf = torch.cumsum(weights / weights.sum(), 0).float()

    def sample(self, n, generator=None):
        return torch.searchsorted(self.cdf, torch.rand(n, generator=generator)).clamp_(max=len(self.cdf) - 1)


class ReferenceGRU4Rec(torch.nn.Module):
    """GRU4Rec from the reference ops: sparse embeddings, autograd, reference optimizer."""

    def __init__(self, model: GRU4Rec):
        super().__init__()
        p = model.params
        self.config = model.config
        self.item_in = torch.nn.Embedding.from_pretrained(p.item_in.clone(), freeze=False, sparse=True)
        self.out_table = torch.nn.Embedding.from_pretrained(p.out_table.clone(), freeze=False, sparse=True)
        self.out_bias = torch.nn.Embedding.from_pretrained(p.out_bias.clone().unsqueeze(1), freeze=False, sparse=True)
        self.w_hh = torch.nn.Parameter(p.w_hh.clone())
        self.b_h = torch.nn.Parameter(p.b_h.clone())
        self.state = {n: (torch.zeros_like(t), torch.zeros_like(t)) for n, t in self.named_parameters()}

    def step(self, inputs, targets, negatives, h, logq_corr):
        c = self.config
        h_new = reference.gru_step(self.item_in(inputs), h, self.w_hh, self.b_h)
        out_ids = torch.cat([targets, negatives])
        loss = reference.sampled_ranking_loss(h_new, self.out_table(out_ids), self.out_bias(out_ids).squeeze(1),
                                              loss=c.loss, bpreg=c.bpreg, elu_param=c.elu_param,
                                              logq_correction=logq_corr)
        for p in self.parameters():
            p.grad = None
        loss.backward()
        for name, p in self.named_parameters():
            acc, mom = self.state[name]
            if p.grad.is_sparse:
                g = p.grad.coalesce()
                reference.sparse_adagrad_momentum_(p.data, acc, mom, g.indices()[0], g.values(),
                                                   lr=c.learning_rate, momentum=c.momentum)
            else:
                reference.adagrad_momentum_(p.data, acc, mom, p.grad, lr=c.learning_rate, momentum=c.momentum)
        return loss.item(), h_new.detach()

    def train_steps(self, sessions, generator):
        """One epoch, one step at a time: yields each step's events."""
        c = self.config
        counts = sessions.item_counts()
        sampler = SearchsortedSampler(counts, c.sample_alpha)
        log_counts = counts.clamp(min=1).log().float()
        h = torch.zeros(c.batch_size, c.hidden)
        for batch in session_parallel_batches(sessions.items, sessions.offsets, c.batch_size):
            h = h[batch.keep]
            h[batch.reset] = 0
            negatives = sampler.sample(c.n_sample, generator)
            logq = None
            if c.loss == "cross-entropy" and c.logq > 0:
                logq = torch.cat([c.logq * log_counts[batch.targets], c.logq * c.sample_alpha * log_counts[negatives]])
            loss, h = self.step(batch.inputs, batch.targets, negatives, h, logq)
            if not math.isfinite(loss):
                raise FloatingPointError("reference: non-finite loss")
            yield len(batch.inputs)

    def as_model(self, template: GRU4Rec) -> GRU4Rec:
        template.params = GRU4RecParams(w_hh=self.w_hh.data, b_h=self.b_h.data, out_table=self.out_table.weight.data,
                                        out_bias=self.out_bias.weight.data.squeeze(1),
                                        item_in=self.item_in.weight.data, embedding="none")
        return template


def interleaved_epochs(ours, ref, n_events: int, slices: int = 50) -> tuple[float, float]:
    """Events/s of two training epochs (generators yielding each step's events) run in turns:
    each runs until it has done the next 1/slices of the epoch's events, then the other, so
    that both see the machine in the same state (this shared machine's speed drifts by tens
    of percent over minutes). Seconds are summed over each one's own turns."""
    seconds, done = [0.0, 0.0], [0, 0]
    gens = [ours, ref]
    for k in range(1, slices + 1):
        goal = n_events * k // slices if k < slices else float("inf")
        for i in (0, 1):
            start = time.perf_counter()
            for events in gens[i]:
                done[i] += events
                if done[i] >= goal:
                    break
            seconds[i] += time.perf_counter() - start
    return done[0] / seconds[0], done[1] / seconds[1]


def step_floors(cfg: GRU4RecConfig, n_items: int, repeats: int = 50) -> tuple[float, float]:
    """Seconds per step of (a) the matrix products a GRU4Rec step (embedding "none": the item
    table holds the input projection) cannot avoid: ``h W_hh^T`` (as one product; GRU4Rec's cell
    does it as two dependent ones of the same size), the scores ``h' W^T`` of the B + S output
    rows, their two backward products, and the GRU's weight gradient (one-step truncated
    backpropagation needs no gradient for the previous state); and
    (b) the fused optimizer on the rows and parameters a step touches (B input rows, B + S
    output rows and biases, W_hh, b_h). Medians, interleaved."""
    B, H, M = cfg.batch_size, cfg.hidden, cfg.batch_size + cfg.n_sample
    g = torch.Generator().manual_seed(0)
    h, w_hh = torch.randn(B, H, generator=g), torch.randn(3 * H, H, generator=g)
    rows, d_scores, d_gates = torch.randn(M, H, generator=g), torch.randn(B, M, generator=g), torch.randn(B, 3 * H, generator=g)
    outs = [torch.empty(B, 3 * H), torch.empty(B, M), torch.empty(B, H), torch.empty(M, H), torch.empty(3 * H, H)]

    def products():
        torch.mm(h, w_hh.t(), out=outs[0])             # gh = h W_hh^T
        torch.mm(h, rows.t(), out=outs[1])             # scores R = h' W^T
        torch.mm(d_scores, rows, out=outs[2])          # dL/dh' = dR W
        torch.mm(d_scores.t(), h, out=outs[3])         # dL/dW = dR^T h'
        torch.mm(d_gates.t(), h, out=outs[4])          # dL/dW_hh

    tables = {"item_in": (n_items, 3 * H, B), "out_table": (n_items, H, M), "out_bias": (n_items, 1, M)}
    state = {k: [torch.randn(n, d, generator=g).abs() for _ in range(3)] + [torch.randint(0, n, (k_,), generator=g),
                                                                            torch.randn(k_, d, generator=g)]
             for k, (n, d, k_) in tables.items()}
    dense = [[torch.randn(*shape, generator=g).abs() for _ in range(4)] for shape in ((3 * H, H), (3 * H,))]

    def optimizer():
        for param, acc, mom, idx, grad in state.values():
            seqrec_ext.sparse_adagrad_momentum_(param, acc, mom, idx, grad, lr=cfg.learning_rate, momentum=cfg.momentum)
        for param, acc, mom, grad in dense:
            seqrec_ext.adagrad_momentum_(param, acc, mom, grad, lr=cfg.learning_rate, momentum=cfg.momentum)

    t = time_interleaved({"products": products, "optimizer": optimizer}, torch.device("cpu"), repeats=repeats, inner=5)
    return t["products"], t["optimizer"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--only", default="", help="run only the configurations whose name contains this")
    parser.add_argument("--floors", action="store_true",
                        help="also measure the step's unavoidable matrix products and optimizer update")
    args = parser.parse_args()
    events = synthetic_events(args.events, args.items, seed=123)
    train, test = time_split(events, test_days=0.5, source="synthetic")
    print(run_facts(torch.device("cpu"), 1))
    print(f"synthetic: train {train.n_events} events / {train.n_items} items / {train.n_sessions} sessions; "
          f"test {test.n_events} events; one epoch; n_sample 2048, sample_alpha 0.5, lr 0.05, momentum 0.4; "
          f"seeds {args.seeds}")
    print()
    floors, spread = [], []
    n_pairs = train.n_events - train.n_sessions  # the (input, target) pairs an epoch trains on
    print("| config | seqrec events/s | reference events/s | speed-up | seqrec R@20 | ref R@20 | seqrec MRR@20 "
          "| ref MRR@20 | R@20 rel. diff | MRR@20 rel. diff | same negatives: R@20 / MRR@20 rel. diff |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, kw in CONFIGS:
        if args.only not in name:
            continue
        rows = []
        for seed in args.seeds:
            cfg = GRU4RecConfig(n_sample=2048, sample_alpha=0.5, learning_rate=0.05, momentum=0.4, seed=seed, **kw)
            ours = GRU4Rec(train.n_items, cfg)
            ref = ReferenceGRU4Rec(GRU4Rec(train.n_items, cfg))  # identical initial parameters
            ours_eps, ref_eps = interleaved_epochs((events for events, _ in ours.train_steps(train)),
                                                   ref.train_steps(train, torch.Generator().manual_seed(seed)),
                                                   n_pairs)
            m_ours = ours.evaluate(test).result()["standard"]
            m_ref = ref.as_model(GRU4Rec(train.n_items, cfg)).evaluate(test).result()["standard"]
            # the same package trained on the reference's very negatives (its sampler and random
            # stream): what is left of the difference is the ops' arithmetic, not the draws
            same = GRU4Rec(train.n_items, cfg)
            same.generator = torch.Generator().manual_seed(seed)
            for _ in same.train_steps(train, sampler=SearchsortedSampler(train.item_counts(), cfg.sample_alpha)):
                pass
            m_same = same.evaluate(test).result()["standard"]
            rows.append((ours_eps, ref_eps, m_ours["Recall@20"], m_ref["Recall@20"], m_ours["MRR@20"], m_ref["MRR@20"],
                         m_same["Recall@20"], m_same["MRR@20"]))
            spread.append((name, seed, m_ours["MRR@20"], m_ref["MRR@20"], m_same["MRR@20"]))
        mean = [statistics.mean(col) for col in zip(*rows)]
        if args.floors:
            floors.append((name, cfg, mean[0], mean[1], *step_floors(cfg, train.n_items)))
        print(f"| {name} | {mean[0]:.0f} | {mean[1]:.0f} | {mean[0] / mean[1]:.2f}x | {mean[2]:.4f} | {mean[3]:.4f} "
              f"| {mean[4]:.4f} | {mean[5]:.4f} | {100 * (mean[2] / mean[3] - 1):+.1f}% "
              f"| {100 * (mean[4] / mean[5] - 1):+.1f}% "
              f"| {100 * (mean[6] / mean[3] - 1):+.2f}% / {100 * (mean[7] / mean[5] - 1):+.2f}% |", flush=True)
    print()
    print("MRR@20 per seed (seqrec / reference / seqrec on the reference's negatives): " + "; ".join(
        f"{name} seed {seed}: {a:.4f} / {b:.4f} / {c:.4f}" for name, seed, a, b, c in spread))
    if floors:
        print()
        print("| config | reference ms/step | seqrec ms/step | target | step budget ms | matrix products ms "
              "| optimizer ms | products + optimizer | seqrec other ms |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, cfg, ours_eps, ref_eps, t_products, t_opt in floors:
            ref_ms, ours_ms = 1e3 * cfg.batch_size / ref_eps, 1e3 * cfg.batch_size / ours_eps
            budget, floor = ref_ms / TARGETS[name], 1e3 * (t_products + t_opt)
            print(f"| {name} | {ref_ms:.2f} | {ours_ms:.2f} | {TARGETS[name]:.0f}x | {budget:.2f} "
                  f"| {1e3 * t_products:.2f} | {1e3 * t_opt:.2f} | {floor:.2f} ({100 * floor / budget:.0f}% of budget) "
                  f"| {ours_ms - floor:.2f} |", flush=True)


if __name__ == "__main__":
    main()
