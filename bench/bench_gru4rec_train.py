"""GRU4Rec training throughput and accuracy: one epoch on a synthetic log (~200k events, ~20k
items, power-law popularity, a learnable next-item signal) for (a) seqrec's GRU4Rec on the fused
ops and (b) a reference GRU4Rec built from the pure-PyTorch reference ops with
nn.Embedding(sparse=True), reference sampling (searchsorted on the cumulative distribution, as
GRU4Rec samples) and the reference Adagrad-with-momentum; same data, hyper-parameters and seed.

    python bench/bench_gru4rec_train.py [--seeds 0 1 2] [--events 200000]
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
from common import run_facts  # noqa: E402

CONFIGS = [
    ("bpr-max B=32 H=100", dict(loss="bpr-max", batch_size=32, hidden=100, bpreg=1.0, elu_param=0.5)),
    ("xe+logQ B=32 H=100", dict(loss="cross-entropy", batch_size=32, hidden=100, bpreg=0.0, elu_param=0.0, logq=1.0)),
    ("bpr-max B=80 H=224", dict(loss="bpr-max", batch_size=80, hidden=224, bpreg=1.95, elu_param=0.5)),
]


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

    def train_epoch(self, sessions, generator):
        c = self.config
        counts = sessions.item_counts()
        weights = counts.pow(c.sample_alpha)
        cdf = torch.cumsum(weights / weights.sum(), 0).float()
        log_counts = counts.clamp(min=1).log().float()
        h = torch.zeros(c.batch_size, c.hidden)
        n_events, start = 0, time.perf_counter()
        for batch in session_parallel_batches(sessions.items, sessions.offsets, c.batch_size):
            h = h[batch.keep]
            h[batch.reset] = 0
            u = torch.rand(c.n_sample, generator=generator)
            negatives = torch.searchsorted(cdf, u).clamp_(max=len(cdf) - 1)
            logq = None
            if c.loss == "cross-entropy" and c.logq > 0:
                logq = torch.cat([c.logq * log_counts[batch.targets], c.logq * c.sample_alpha * log_counts[negatives]])
            loss, h = self.step(batch.inputs, batch.targets, negatives, h, logq)
            if not math.isfinite(loss):
                raise FloatingPointError("reference: non-finite loss")
            n_events += len(batch.inputs)
        return n_events / (time.perf_counter() - start)

    def as_model(self, template: GRU4Rec) -> GRU4Rec:
        template.params = GRU4RecParams(w_hh=self.w_hh.data, b_h=self.b_h.data, out_table=self.out_table.weight.data,
                                        out_bias=self.out_bias.weight.data.squeeze(1),
                                        item_in=self.item_in.weight.data, embedding="none")
        return template


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--items", type=int, default=20_000)
    args = parser.parse_args()
    events = synthetic_events(args.events, args.items, seed=123)
    train, test = time_split(events, test_days=0.5, source="synthetic")
    print(run_facts(torch.device("cpu"), 1))
    print(f"synthetic: train {train.n_events} events / {train.n_items} items / {train.n_sessions} sessions; "
          f"test {test.n_events} events; one epoch; n_sample 2048, sample_alpha 0.5, lr 0.05, momentum 0.4; "
          f"seeds {args.seeds}")
    print()
    print("| config | seqrec events/s | reference events/s | speed-up | seqrec R@20 | ref R@20 | seqrec MRR@20 "
          "| ref MRR@20 | R@20 rel. diff | MRR@20 rel. diff |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, kw in CONFIGS:
        rows = []
        for seed in args.seeds:
            cfg = GRU4RecConfig(n_sample=2048, sample_alpha=0.5, learning_rate=0.05, momentum=0.4, seed=seed, **kw)
            ours = GRU4Rec(train.n_items, cfg)
            ref = ReferenceGRU4Rec(GRU4Rec(train.n_items, cfg))  # identical initial parameters
            ours_eps = ours.train_epoch(train)["events_per_s"]
            ref_eps = ref.train_epoch(train, torch.Generator().manual_seed(seed))
            m_ours = ours.evaluate(test).result()["standard"]
            m_ref = ref.as_model(GRU4Rec(train.n_items, cfg)).evaluate(test).result()["standard"]
            rows.append((ours_eps, ref_eps, m_ours["Recall@20"], m_ref["Recall@20"], m_ours["MRR@20"], m_ref["MRR@20"]))
        mean = [statistics.mean(col) for col in zip(*rows)]
        print(f"| {name} | {mean[0]:.0f} | {mean[1]:.0f} | {mean[0] / mean[1]:.2f}x | {mean[2]:.4f} | {mean[3]:.4f} "
              f"| {mean[4]:.4f} | {mean[5]:.4f} | {100 * (mean[2] / mean[3] - 1):+.1f}% "
              f"| {100 * (mean[4] / mean[5] - 1):+.1f}% |", flush=True)


if __name__ == "__main__":
    main()
