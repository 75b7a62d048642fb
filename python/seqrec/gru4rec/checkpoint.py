"""GRU4Rec checkpoints: plain tensors and numbers only, so ``torch.load(weights_only=True)``
reads them; written atomically and durably."""

from __future__ import annotations

import torch

from ..checkpoints import save_atomically
from .config import GRU4RecConfig
from .model import GRU4Rec

CHECKPOINT_FORMAT = "seqrec.gru4rec/2"  # /2: GRU4Rec's initialisation, cell and loss normalisation


def save_checkpoint(model: GRU4Rec, path, *, epoch: int, item_ids, world_size: int = 1) -> None:
    """Write atomically and durably (seqrec.checkpoints). ``world_size``: how many processes
    trained it (data-parallel; a resumed run must have as many)."""
    save_atomically(
        {
            "format": CHECKPOINT_FORMAT,
            "config": model.config_dict(),
            "n_items": model.n_items,
            "epoch": epoch,
            "params": {k: v.cpu() for k, v in model._tensors().items()},
            "state": {k: (a.cpu(), m.cpu()) for k, (a, m) in model.state.items()},
            "generator": model.generator.get_state(),
            "item_ids": torch.as_tensor(item_ids, dtype=torch.long),
            "world_size": int(world_size),
        },
        path,
    )


def load_checkpoint(path, device="cpu"):
    """(model, epoch, item_ids) from a checkpoint written by save_checkpoint."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format") != CHECKPOINT_FORMAT:
        if str(payload.get("format", "")).startswith("seqrec.gru4rec/"):
            raise ValueError(
                f"{path}: a GRU4Rec checkpoint of format {payload['format']}, this version reads "
                f"{CHECKPOINT_FORMAT} (the model changed: train it again)"
            )
        raise ValueError(f"{path}: not a seqrec GRU4Rec checkpoint")
    model = GRU4Rec(payload["n_items"], GRU4RecConfig(**payload["config"]), device=device)
    with torch.no_grad():
        for name, tensor in model._tensors().items():
            tensor.copy_(payload["params"][name])
            acc, mom = model.state[name]
            acc.copy_(payload["state"][name][0])
            mom.copy_(payload["state"][name][1])
    model.generator.set_state(payload["generator"])
    model.item_ids = payload["item_ids"].numpy()
    model.world_size = int(payload.get("world_size", 1))
    return model, payload["epoch"], model.item_ids
