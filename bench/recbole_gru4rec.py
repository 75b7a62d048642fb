"""RecBole 1.2.1's GRU4Rec on MovieLens 100K in its leave-one-out protocol with full ranking:
trained with early stopping on validation MRR@10, evaluated on test; writes a JSON file with
the test metrics at the best validation epoch, each epoch's validation metrics and seconds,
and the wall time to the best epoch. Run by a Python that has RecBole and its dependencies (a
separate venv: RecBole needs numpy < 2), not by seqrec's:

    /path/to/recbole-venv/bin/python bench/recbole_gru4rec.py out.json --batch-size 256 --epochs 5
"""

import argparse
import json
import os
import time

# RecBole 1.2.1 reloads its own best-model checkpoint with torch.load, which torch >= 2.6 refuses
# by default (weights_only): that file is this run's own
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

import torch  # noqa: E402
from recbole.data import create_dataset, data_preparation  # noqa: E402
from recbole.model.sequential_recommender import GRU4Rec  # noqa: E402
from recbole.trainer import Trainer  # noqa: E402
from recbole.utils import init_seed  # noqa: E402
from recbole_split import ml100k_config  # noqa: E402  (this folder)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--embedding", type=int, default=64)
    p.add_argument("--learning-rate", type=float, default=0.001)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=2020)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    config = ml100k_config(
        hidden_size=args.hidden,
        embedding_size=args.embedding,
        epochs=args.epochs,
        train_batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        metrics=["Recall", "MRR", "NDCG"],
        topk=[10, 20],
        valid_metric="MRR@10",
        seed=args.seed,
        device="cpu",
        use_gpu=False,
    )
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    model = GRU4Rec(config, train_data.dataset).to(config["device"])
    trainer = Trainer(config, model)
    epochs, start = [], time.perf_counter()
    valid_epoch = trainer._valid_epoch

    def timed_valid(*a, **kw):  # each epoch's validation result and the wall time so far
        result = valid_epoch(*a, **kw)
        epochs.append({"valid": {k: float(v) for k, v in result[1].items()}, "wall_s": time.perf_counter() - start})
        return result

    trainer._valid_epoch = timed_valid
    trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    test = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    best = max(range(len(epochs)), key=lambda i: (epochs[i]["valid"]["mrr@10"], -i))
    with open(args.out, "w") as f:
        json.dump(
            {
                "settings": vars(args),
                "test": {k: float(v) for k, v in test.items()},
                "epochs": epochs,
                "best_epoch": best + 1,
                "wall_s_to_best": epochs[best]["wall_s"],
                "wall_s": time.perf_counter() - start,
            },
            f,
            indent=1,
        )


if __name__ == "__main__":
    main()
