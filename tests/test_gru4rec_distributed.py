"""Data-parallel GRU4Rec on torch.distributed (gloo, 2 CPU processes): the replicas stay bitwise
identical, the loss follows a 1-process run at the same global batch, and a killed process ends
the job instead of hanging it."""

import dataclasses
import datetime
import os
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from seqrec.gru4rec import GRU4Rec, GRU4RecConfig
from seqrec.gru4rec.distributed import DataParallelStep

N_ITEMS = 200


def data():
    from test_seqrec_gru4rec import planted_sessions

    return planted_sessions(400, seed=0)


def config(batch_size):
    return GRU4RecConfig(hidden=16, n_sample=32, batch_size=batch_size, learning_rate=0.1, momentum=0.2, seed=0)


def _worker(rank, world, store, out_dir, batch_size, kill_at, epochs):
    torch.set_num_threads(1)
    timeout = datetime.timedelta(seconds=15)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world, timeout=timeout)
    sessions = data()
    model = GRU4Rec(N_ITEMS, config(batch_size))
    model.generator.manual_seed(model.config.seed + rank)  # negatives and dropout per process
    shard, step = sessions.shard(rank, world), DataParallelStep(model)
    losses = []
    for _ in range(epochs):
        for i, (_, loss) in enumerate(model.train_steps(shard, counts=sessions.item_counts(), step=step)):
            losses.append(loss)
            if rank == kill_at and i == 3:
                os._exit(3)  # a process that dies mid-epoch, without a word
    torch.save({"params": dict(model.parameter_tensors()), "losses": losses}, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


def spawn(tmp_path, world, batch_size, kill_at=-1, epochs=2):
    mp.spawn(_worker, args=(world, str(tmp_path / "store"), str(tmp_path), batch_size, kill_at, epochs), nprocs=world)
    return [torch.load(tmp_path / f"rank{r}.pt") for r in range(world)]


def test_replicas_stay_identical_and_follow_one_process(tmp_path):
    ranks = spawn(tmp_path, 2, batch_size=8)
    (a, b) = ranks
    for name in a["params"]:
        assert torch.equal(a["params"][name], b["params"][name]), name
    assert a["losses"] == b["losses"]  # every process reports the same (mean) loss
    fresh = GRU4Rec(N_ITEMS, config(8))
    assert not torch.equal(fresh.out_table, a["params"]["out_table"])
    # one process, the same global batch (2 x 8), the same data and epochs
    single = GRU4Rec(N_ITEMS, config(16))
    sessions = data()
    single_losses = [single.train_epoch(sessions, threads=1)["loss"] for _ in range(2)]
    steps = len(a["losses"]) // 2
    two_process = [sum(a["losses"][:steps]) / steps, sum(a["losses"][steps:]) / (len(a["losses"]) - steps)]
    for ours, theirs in zip(two_process, single_losses):
        assert abs(ours - theirs) < 0.05 * theirs, (two_process, single_losses)  # measured: within 1.5%
    assert two_process[1] < two_process[0]  # it learns


def test_a_killed_process_ends_the_job(tmp_path):
    start = time.perf_counter()
    with pytest.raises(mp.ProcessExitedException):
        spawn(tmp_path, 2, batch_size=8, kill_at=1, epochs=1)
    assert time.perf_counter() - start < 60


def test_torchrun_trains_the_cli_and_resume_needs_the_same_world(tmp_path):
    import subprocess
    import sys

    import numpy as np

    from seqrec.cli import main
    from seqrec.gru4rec import load_checkpoint

    g = np.random.default_rng(0)
    with open(tmp_path / "train.tsv", "w") as f:
        f.write("SessionId\tItemId\tTime\n")
        t = 0
        for s in range(200):
            for item in g.integers(0, 30, size=int(g.integers(2, 6))):
                t += 1
                f.write(f"{s}\t{item}\t{t}\n")
    ckpt = tmp_path / "m.pt"
    args = ["gru4rec", "train", "--dataset", str(tmp_path / "train.tsv"), "--test-days", "0.0001", "--epochs", "1"]
    args += ["--layers", "8", "--n-sample", "10", "--batch-size", "4", "--quiet", "--threads", "1"]
    run = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "seqrec", *args]
    # outside the source tree, whose uncompiled package would shadow the installed one
    done = subprocess.run([*run, "--save", str(ckpt)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "x 2 processes" in done.stdout and done.stdout.count("| standard |") == 1  # rank 0 reports, alone
    model, epoch, _ = load_checkpoint(ckpt)
    assert epoch == 1 and model.world_size == 2
    with pytest.raises(SystemExit, match="trained by 2 process.es., this run has 1"):
        main([*args, "--epochs", "2", "--save", str(ckpt), "--resume"])
    # resumed for a second epoch with the same world: the run of two epochs at once, exactly
    for extra in (["--save", str(ckpt), "--resume"], ["--save", str(tmp_path / "straight.pt")]):
        done = subprocess.run(
            [*run, "--epochs", "2", *extra], capture_output=True, text=True, cwd=tmp_path, timeout=300
        )
        assert done.returncode == 0, done.stderr[-3000:]
    resumed, straight = load_checkpoint(ckpt)[0], load_checkpoint(tmp_path / "straight.pt")[0]
    for name, tensor in resumed.state_dict().items():
        assert torch.equal(tensor, straight.state_dict()[name]), name


def _cosernn_worker(rank, world, store, out_dir):
    from test_cosernn_model import _small_config, _synthetic_sequences

    from seqrec.cosernn.train import train

    torch.set_num_threads(1)
    timeout = datetime.timedelta(seconds=30)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world, timeout=timeout)
    seqs, _ = _synthetic_sequences(n_users=40)
    save = os.path.join(out_dir, "cosernn.pt")
    model, history = train(seqs, _small_config(max_epochs=3, patience=2), save=save, log=lambda line: None, threads=1)
    torch.save({"state": model.state_dict(), "history": history}, os.path.join(out_dir, f"cosernn{rank}.pt"))
    dist.barrier()  # as the command line does: no process tears down its links while a peer still works
    dist.destroy_process_group()


def test_cosernn_data_parallel_replicas_and_early_stopping_agree(tmp_path):
    """DistributedDataParallel over users: equal replicas, the same validation history (so the
    same early-stopping decisions) in every process, near a 1-process run at the same global
    batch; rank 0 alone writes the checkpoint."""
    from test_cosernn_model import _small_config, _synthetic_sequences

    from seqrec.cosernn.train import train

    mp.spawn(_cosernn_worker, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2)
    a, b = (torch.load(tmp_path / f"cosernn{r}.pt") for r in range(2))
    for name in a["state"]:
        assert torch.equal(a["state"][name], b["state"][name]), name
    valid = [[h["valid_cosine"] for h in run["history"]] for run in (a, b)]
    assert valid[0] == valid[1] and (tmp_path / "cosernn.pt").exists()
    seqs, _ = _synthetic_sequences(n_users=40)
    torch.set_num_threads(1)
    single_config = dataclasses.replace(_small_config(max_epochs=3, patience=2), batch_size=16)
    _, single = train(seqs, single_config, log=lambda line: None)
    for ours, theirs in zip(valid[0], [h["valid_cosine"] for h in single]):
        assert abs(ours - theirs) < 0.03, (valid[0], single)


def test_torchrun_with_validation_stops_every_process_at_rank_0_s_word(tmp_path):
    """Rank 0 validates; its decision to stop reaches the other process (no hang), and the
    checkpoint holds the best epoch's model."""
    import subprocess
    import sys

    from test_gru4rec_early_stopping import write_log

    from seqrec.gru4rec import load_checkpoint

    train, valid = write_log(tmp_path / "train.tsv", 150, 0), write_log(tmp_path / "valid.tsv", 40, 1, 1e6)
    args = ["gru4rec", "train", "--dataset", train, "--test", valid, "--valid", valid, "--valid-metric", "mrr@5"]
    args += ["--patience", "1", "--epochs", "8", "--learning-rate", "0.5", "--save", str(tmp_path / "m.pt")]
    args += ["--layers", "8", "--n-sample", "16", "--batch-size", "4", "--quiet", "--threads", "1"]
    run = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "seqrec", *args]
    done = subprocess.run(run, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    epochs = [line for line in done.stdout.splitlines() if line.startswith("epoch ")]
    assert "x 2 processes" in epochs[0] and 2 <= len(epochs) < 8, done.stdout
    assert f"stopped after epoch {len(epochs)}: no gain for 1 epoch" in done.stdout
    _, best, _ = load_checkpoint(tmp_path / "m.pt")
    assert best == len(epochs) - 1 and f"best epoch {best} of {len(epochs)}" in done.stdout
