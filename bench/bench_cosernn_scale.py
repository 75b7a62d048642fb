"""CoSeRNN at the paper's scale (Hansen et al., RecSys 2020: ~200k users x ~220 sessions each)
on one machine: peak memory and seconds per phase of a synthetic log of that size, stored flat
(``SessionSequences``), trained in length-bucketed batches and evaluated in chunks of users.

Phases:

1. **data**: the synthetic generator (``synthetic.synthetic_listening``) in chunks of users,
   each chunk sessionized and turned into flat sequences at once (its raw streams and padded
   sessions are freed before the next), appended to preallocated columns. The generator draws
   the item space and the users from one seed, so two chunks cannot share an item space: chunk
   ``c`` gets its own catalogue (item ids offset by ``c * items_per_chunk``, its planted vectors
   the item vectors -- no word2vec at this scale), and the whole log has ``n_chunks *
   items_per_chunk`` tracks. With ``--distinct-chunks N`` only N chunks are generated and the
   others are copies of them (own user ids, own catalogue, same streams), to save the
   generator's time; its time for all the users is then extrapolated per user (labelled).
2. **train**: Adam steps of the paper's model (LSTM 400, shared input MLP 200) on batches of
   ``--batch-size`` users of similar history length, the cap ``--max-sessions`` applied. An
   epoch is run whole if ``--train-batches 0``; otherwise that many batches (drawn from the
   epoch's shuffled bucket order) are timed and the epoch's time extrapolated from the time per
   padded session slot (batches differ in length) -- labelled as such.
3. **evaluate**: the validation pass of an epoch (``mean_cosine``; over all users with
   ``--validate-all``), then the baselines, the oracles and the model on the test period
   (``evaluate_all``, chunks of users), on the first ``--eval-users`` users (the others
   extrapolated per user) or on all (``--eval-users 0``).

Memory: peak RSS (``VmHWM``) after each phase, and the bytes held by the sequences.

    nice -n 10 python bench/bench_cosernn_scale.py [--users 200000] [--sessions 220]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import resource
import time

import numpy as np
import torch

from seqrec.cosernn.evaluate import baseline_predictor, evaluate_all, item_counts, results_table
from seqrec.cosernn.listening import sessionize_listening
from seqrec.cosernn.model import CoSeRNN, CoSeRNNConfig, mean_cosine, model_predictor, training_objective
from seqrec.cosernn.sequences import TEST, TRAIN, VALID, SessionSequences, build_session_sequences
from seqrec.cosernn.synthetic import synthetic_listening


def memory() -> dict:
    """Current and peak resident memory of this process, GiB."""
    out = {"peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmHWM:", "VmRSS:")):
                key = "hwm_gib" if line.startswith("VmHWM") else "rss_gib"
                out[key] = int(line.split()[1]) / 2**20
    return out


class Columns:
    """Flat columns grown chunk by chunk into preallocated storage (doubling when full), so
    that the data set is held once, plus one chunk."""

    def __init__(self, capacity: int):
        self.capacity, self.n, self.columns, self.lengths, self.users = capacity, 0, None, [], []
        self.n_devices = self.n_sources = None

    def append(self, part: SessionSequences) -> None:
        if self.columns is None:
            self.columns = {
                c: torch.empty((self.capacity, *getattr(part, c).shape[1:]), dtype=getattr(part, c).dtype)
                for c in SessionSequences._COLUMNS
            }
            self.n_devices, self.n_sources = part.n_devices, part.n_sources
        m = part.n_sessions
        if self.n + m > self.capacity:
            self.capacity = max(2 * self.capacity, self.n + m)
            for c, old in self.columns.items():
                grown = torch.empty((self.capacity, *old.shape[1:]), dtype=old.dtype)
                grown[: self.n] = old[: self.n]
                self.columns[c] = grown
        for c in SessionSequences._COLUMNS:
            self.columns[c][self.n : self.n + m] = getattr(part, c)
        self.n += m
        self.lengths.append(part.lengths)
        self.users.append(part.users)

    def finish(self) -> SessionSequences:
        lengths = torch.cat(self.lengths)
        offsets = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(lengths, 0)])
        return SessionSequences(
            users=np.concatenate(self.users),
            offsets=offsets,
            n_devices=self.n_devices,
            n_sources=self.n_sources,
            **{c: v[: self.n] for c, v in self.columns.items()},
        )


def build_data(args, log) -> tuple[SessionSequences, np.ndarray, dict]:
    n_chunks = math.ceil(args.users / args.chunk_users)
    distinct = n_chunks if args.distinct_chunks <= 0 else min(args.distinct_chunks, n_chunks)
    store = Columns(int(args.users * args.sessions * 1.05) + 1000)
    vectors, seconds = [], {"generate": 0.0, "sessionize": 0.0, "build": 0.0, "append": 0.0}
    made, generated_users = {}, 0
    for c in range(n_chunks):
        n_users = min(args.chunk_users, args.users - c * args.chunk_users)
        source = c % distinct
        if source not in made or made[source][0].n_users < n_users:
            t0 = time.perf_counter()
            stream_log, planted = synthetic_listening(
                n_users=n_users,
                n_items=args.items_per_chunk,
                sessions_per_user=args.sessions,
                days=args.days,
                seed=args.seed + source,
            )
            t1 = time.perf_counter()
            sessions = sessionize_listening(stream_log, source="synthetic")
            del stream_log
            t2 = time.perf_counter()
            ids = np.arange(args.items_per_chunk)
            part = build_session_sequences(
                sessions, planted.astype(np.float32), ids, n_devices=3, n_sources=3, test_days=14, valid_days=5
            )
            del sessions
            t3 = time.perf_counter()
            seconds["generate"] += t1 - t0
            seconds["sessionize"] += t2 - t1
            seconds["build"] += t3 - t2
            generated_users += n_users
            made[source] = (part, planted.astype(np.float32))
        part, planted = made[source]
        if part.n_users > n_users:
            part = part.subset(torch.arange(n_users))
        t0 = time.perf_counter()
        copy = SessionSequences(**{k: getattr(part, k) for k in part.__dataclass_fields__})
        copy.items = torch.where(part.items >= 0, part.items + c * args.items_per_chunk, part.items)
        copy.users = np.arange(n_users, dtype=np.int64) + c * args.chunk_users
        store.append(copy)
        vectors.append(planted)
        seconds["append"] += time.perf_counter() - t0
        del part, copy
        if c + distinct >= n_chunks:  # no later chunk copies this one: the store holds it now
            made.pop(source, None)
        if c == distinct - 1 or c == n_chunks - 1 or (c + 1) % 10 == 0:
            log(f"data: chunk {c + 1}/{n_chunks} ({store.n} sessions) {json.dumps(memory())}")
    made.clear()
    gc.collect()
    t0 = time.perf_counter()
    seqs = store.finish()
    del store
    # one split for the whole log: the chunks end on the same day, the test period its last 14 days
    seqs = seqs.with_split(float(seqs.starts.max()), 14.0, 5.0)
    seconds["finish"] = time.perf_counter() - t0
    seconds["generated users"] = generated_users
    if generated_users < args.users:
        seconds["generate, extrapolated to all users"] = seconds["generate"] / generated_users * args.users
        seconds["sessionize+build, extrapolated to all users"] = (
            (seconds["sessionize"] + seconds["build"]) / generated_users * args.users
        )
    return seqs, np.concatenate(vectors), seconds


def train_phase(args, seqs: SessionSequences, log) -> tuple[CoSeRNN, dict]:
    config = CoSeRNNConfig(
        n_devices=seqs.n_devices, n_sources=seqs.n_sources, batch_size=args.batch_size, max_sessions=args.max_sessions
    )
    seqs = seqs.most_recent(config.max_sessions)
    torch.manual_seed(config.seed)
    model = CoSeRNN(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(config.seed)
    batches = list(seqs.batch_indices(config.batch_size, generator, buckets=True))
    lengths = seqs.lengths
    slots_epoch = sum(len(b) * int(lengths[b].max()) for b in batches)
    run = batches if args.train_batches <= 0 else batches[: args.train_batches]
    times, slots, select_s, total, count = [], 0, 0.0, 0.0, 0
    for i, index in enumerate(run):
        t0 = time.perf_counter()
        batch = seqs.select(index)
        t1 = time.perf_counter()
        model.train()
        u, u_hat = model.embed(batch, with_u_hat=True)
        objective, loss, n = training_objective(u, batch, pathway_loss=model.config.pathway_loss, u_hat=u_hat)
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        optimizer.step()
        t2 = time.perf_counter()
        total, count = total + float(loss.detach()), count + n
        if i >= args.warmup_batches or args.train_batches <= 0:
            times.append(t2 - t0)
            select_s += t1 - t0
            slots += len(index) * batch.s_pos.shape[1]
        if (i + 1) % 10 == 0:
            log(f"train: batch {i + 1}/{len(run)}, {t2 - t0:.2f} s, cosine {1 - total / max(count, 1):.4f}")
    per_slot = sum(times) / max(slots, 1)
    out = {
        "batches in an epoch": len(batches),
        "batch size": config.batch_size,
        "padded session slots in an epoch": slots_epoch,
        "real sessions": int(lengths.sum()),
        "padding share": 1 - int(lengths.sum()) / slots_epoch,
        "batches timed": len(times),
        "seconds timed": sum(times),
        "seconds per batch (mean)": sum(times) / max(len(times), 1),
        "of which select (padding the batch)": select_s,
        "train cosine of the batches": 1 - total / max(count, 1),
    }
    if args.train_batches <= 0:
        out["epoch seconds (measured)"] = sum(times)
    else:
        out["epoch seconds (extrapolated from the time per padded slot)"] = per_slot * slots_epoch
    return model, out


def evaluate_phase(args, seqs: SessionSequences, vectors: np.ndarray, model: CoSeRNN, log) -> dict:
    seqs = seqs.most_recent(args.max_sessions)
    item_vectors = torch.from_numpy(vectors)
    counts = item_counts(seqs, len(item_vectors), TRAIN)
    users = seqs.n_users if args.eval_users <= 0 else min(args.eval_users, seqs.n_users)
    part = seqs if users == seqs.n_users else seqs.subset(torch.arange(users))
    approaches = {"baselines": baseline_predictor(item_vectors, counts), "CoSeRNN": model_predictor(model)}
    t0 = time.perf_counter()
    valid = mean_cosine(model, seqs if args.validate_all else part, VALID)
    validate = time.perf_counter() - t0
    t0 = time.perf_counter()
    results = evaluate_all(approaches, part, part.split == TEST, item_vectors, per_session=True)
    seconds = time.perf_counter() - t0
    log(results_table({k: results[k] for k in results}))
    out = {
        "users evaluated": users,
        "sessions evaluated": results["CoSeRNN"]["sessions"],
        "seconds": seconds,
        "validation cosine": valid,
    }
    if args.validate_all:
        out["validation pass seconds (mean_cosine, all users)"] = validate
    else:
        out["validation pass seconds (mean_cosine, the same users)"] = validate
    if users < seqs.n_users:
        out["seconds, extrapolated to all users"] = seconds / users * seqs.n_users
        if not args.validate_all:
            out["validation pass seconds, extrapolated to all users"] = validate / users * seqs.n_users
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=200_000)
    p.add_argument("--sessions", type=float, default=220.0, help="mean sessions per user (Poisson)")
    p.add_argument("--days", type=int, default=60)
    p.add_argument("--chunk-users", type=int, default=2000, help="users generated at once")
    p.add_argument("--items-per-chunk", type=int, default=10_000, help="tracks of each chunk's own catalogue")
    p.add_argument(
        "--distinct-chunks", type=int, default=5, help="chunks actually generated, the others copies (0: all)"
    )
    p.add_argument("--batch-size", type=int, default=256, help="users per batch (the paper's 256)")
    p.add_argument("--max-sessions", type=int, default=400)
    p.add_argument("--train-batches", type=int, default=30, help="batches timed (0: a whole epoch)")
    p.add_argument("--warmup-batches", type=int, default=2, help="first batches not timed")
    p.add_argument("--eval-users", type=int, default=4000, help="users evaluated (0: all)")
    p.add_argument("--validate-all", action="store_true", help="the validation pass over all users, not --eval-users")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the report here too")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    def log(line: str) -> None:
        print(f"[{time.perf_counter() - start:7.1f} s] {line}", flush=True)

    report = {"args": vars(args)}
    t0 = time.perf_counter()
    seqs, vectors, data_seconds = build_data(args, log)
    report["data"] = {
        "seconds": time.perf_counter() - t0,
        **data_seconds,
        "users": seqs.n_users,
        "sessions": seqs.n_sessions,
        "tracks": len(vectors),
        "longest history": int(seqs.lengths.max()),
        "sequences GiB": seqs.nbytes() / 2**30,
        "bytes per session": seqs.nbytes() / seqs.n_sessions,
        "memory": memory(),
    }
    log(f"data: {json.dumps(report['data'])}")
    t0 = time.perf_counter()
    model, report["train"] = train_phase(args, seqs, log)
    report["train"]["seconds"] = time.perf_counter() - t0
    report["train"]["memory"] = memory()
    log(f"train: {json.dumps(report['train'])}")
    report["evaluate"] = evaluate_phase(args, seqs, vectors, model, log)
    report["evaluate"]["memory"] = memory()
    log(f"evaluate: {json.dumps(report['evaluate'])}")
    report["total seconds"] = time.perf_counter() - start
    report["peak memory GiB"] = memory()["hwm_gib"]
    print(json.dumps(report, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
