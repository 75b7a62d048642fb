"""RecBole's own leave-one-out split of MovieLens 100K, as a JSON file of each user's validation
and test item: run by a Python that has RecBole 1.2.1 and its dependencies (a separate venv:
RecBole needs numpy < 2), not by seqrec's.

    /path/to/recbole-venv/bin/python bench/recbole_split.py split.json

The split is RecBole's for sequential models: ``eval_args: {split: {LS: valid_and_test}, order:
TO, group_by: user}`` on the ml-100k files inside the recbole package."""

import importlib.util
import json
import os
import sys
import tempfile

from recbole.config import Config
from recbole.data import create_dataset


def ml100k_config(**settings) -> Config:
    """RecBole's configuration of GRU4Rec on its ml-100k files with the leave-one-out split of
    sequential models (``settings`` added to it)."""
    data_path = os.path.join(os.path.dirname(importlib.util.find_spec("recbole").origin), "dataset_example")
    return Config(
        model="GRU4Rec",
        dataset="ml-100k",
        config_dict={
            "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"},
            "train_neg_sample_args": None,
            "loss_type": "CE",
            "data_path": data_path,
            "show_progress": False,
            "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
            "checkpoint_dir": tempfile.mkdtemp(),
            **settings,
        },
    )


def main(out_path: str) -> None:
    config = ml100k_config()
    dataset = create_dataset(config)
    train, valid, test = dataset.build()
    out = {"training_examples": len(train.inter_feat)}
    for name, part in (("valid", valid), ("test", test)):
        users = dataset.id2token("user_id", part.inter_feat["user_id"].numpy())
        items = dataset.id2token("item_id", part.inter_feat["item_id"].numpy())
        out[name] = {str(u): str(i) for u, i in zip(users, items)}
    with open(out_path, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main(sys.argv[1])
