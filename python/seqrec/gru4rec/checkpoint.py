"""GRU4Rec checkpoints: plain tensors and numbers only, so ``torch.load(weights_only=True)``
reads them; written atomically and durably."""

from __future__ import annotations

import torch

from ..checkpoints import load_checked, save_atomically
from .config import GRU4RecConfig
from .model import GRU4Rec

CHECKPOINT_FORMAT = "seqrec.gru4rec/2"  # /2: GRU4Rec's initialisation, cell and loss normalisation


def _model_part(model) -> dict:
    return {
        "params": {k: v.detach().cpu() for k, v in model.parameter_tensors().items()},
        "state": {k: (a.cpu(), m.cpu()) for k, (a, m) in model.optimizer_state.items()},
        "generator": model.generator.get_state(),
    }


def save_checkpoint(model: GRU4Rec, path, *, epoch: int, item_ids, world_size: int = 1, validation=None) -> None:
    """Write atomically and durably, with the checksums of its values (seqrec.checkpoints).
    ``world_size``: how many processes trained it (data-parallel; a resumed run must have as
    many). ``validation`` (an early_stopping.EarlyStopping): the checkpoint's model is then the
    best epoch's, and the model of the last epoch ``epoch`` is kept beside it (``last``) while
    they differ, with the validation record, for ``--resume``."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": model.config_dict(),
        "n_items": model.n_items,
        "epoch": epoch,
        **_model_part(model),
        "item_ids": torch.as_tensor(item_ids, dtype=torch.long),
        "world_size": int(world_size),
    }
    if validation is not None and validation.best_epoch:
        payload["validation"] = validation.to_payload()
        if validation.best_epoch != epoch:
            payload["last"] = {"epoch": epoch, **_model_part(model)}
            payload.update(epoch=validation.best_epoch, **validation.best)
    save_atomically(payload, path, kind="seqrec.gru4rec")


def _check_structure(path, payload: dict) -> None:
    """ValueError naming the first field that is missing or of the wrong type."""
    expected = {
        "config": dict,
        "n_items": int,
        "epoch": int,
        "params": dict,
        "state": dict,
        "generator": torch.Tensor,
        "item_ids": torch.Tensor,
    }
    for key, kind in expected.items():
        if not isinstance(payload.get(key), kind):
            raise ValueError(f"{path}: a damaged GRU4Rec checkpoint: {key} is missing or not a {kind.__name__}")
    n, ids = payload["n_items"], payload["item_ids"]
    if n < 1 or ids.dim() != 1 or len(ids) != n or ids.dtype != torch.long:
        raise ValueError(
            f"{path}: a damaged GRU4Rec checkpoint: item_ids ({tuple(ids.shape)}, {ids.dtype}) must be "
            f"n_items = {n} int64 ids"
        )


def _read(path) -> dict:
    payload = load_checked(path, "seqrec.gru4rec")
    if payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path}: a GRU4Rec checkpoint of format {payload.get('format')}, this version reads "
            f"{CHECKPOINT_FORMAT} (the model changed: train it again)"
        )
    _check_structure(path, payload)
    return payload


def _build(path, payload: dict, part: dict, device) -> GRU4Rec:
    """The model of the checkpoint's settings with the parameters, optimizer state and
    generator of ``part`` (the checkpoint itself, or its ``last`` section)."""
    try:
        config = GRU4RecConfig(**payload["config"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: a damaged GRU4Rec checkpoint: its settings are not valid ({err})") from None
    try:
        model = GRU4Rec(payload["n_items"], config, device=device)
    except ValueError as err:  # e.g. more memory than this machine has
        raise ValueError(f"{path}: cannot be loaded here: {err}") from None
    params, state = part.get("params"), part.get("state")
    if not isinstance(params, dict) or not isinstance(state, dict):
        raise ValueError(f"{path}: a damaged GRU4Rec checkpoint: its parameters or optimizer state are missing")
    with torch.no_grad():
        for name, tensor in model.parameter_tensors().items():
            saved = [params.get(name)]
            pair = state.get(name)
            saved += list(pair) if isinstance(pair, (tuple, list)) and len(pair) == 2 else [None, None]
            for what, value in zip(("params", "optimizer accumulator", "optimizer momentum"), saved):
                if not isinstance(value, torch.Tensor) or value.shape != tensor.shape or not value.is_floating_point():
                    got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                    raise ValueError(
                        f"{path}: a damaged GRU4Rec checkpoint: {what} of {name} is {got}, "
                        f"its settings make it {tuple(tensor.shape)}"
                    )
            acc, mom = model.optimizer_state[name]
            for target, value in zip((tensor, acc, mom), saved):
                target.copy_(value)
    saved = part.get("generator")
    if not isinstance(saved, torch.Tensor):
        raise ValueError(f"{path}: a damaged GRU4Rec checkpoint: its generator state is missing")
    if saved.numel() == model.generator.get_state().numel():
        try:
            model.generator.set_state(saved)
        except RuntimeError as err:
            raise ValueError(f"{path}: a damaged GRU4Rec checkpoint: its generator state ({err})") from None
    # else: trained on another kind of device, whose generator state this one cannot take: the
    # dropout and sampling generator starts from the seed (a resumed run is then not bit for bit)
    model.item_ids = payload["item_ids"].numpy()
    model.world_size = int(payload.get("world_size", 1))
    return model


def load_checkpoint(path, device="cpu"):
    """(model, epoch, item_ids) from a checkpoint written by save_checkpoint -- with validation,
    the best epoch's model and that epoch; ValueError naming the fault for anything else
    (seqrec.checkpoints.load_checked: unreadable, truncated, another kind of file, a changed
    value; here: an older format, a missing field, settings that are not valid, a tensor whose
    shape or type does not fit the settings)."""
    payload = _read(path)
    model = _build(path, payload, payload, device)
    return model, payload["epoch"], model.item_ids


def load_for_resume(path, device="cpu"):
    """(model, epoch, item_ids, validation) to continue training from: the last epoch's model
    and that epoch, and the run's validation record (early_stopping.EarlyStopping, the best
    epoch's model in it) or None when it was trained without validation."""
    from .early_stopping import EarlyStopping

    payload = _read(path)
    record = payload.get("validation")
    if record is None:
        model = _build(path, payload, payload, device)
        return model, payload["epoch"], model.item_ids, None
    last = payload.get("last", payload)
    if not isinstance(last, dict) or not isinstance(last.get("epoch", payload["epoch"]), int):
        raise ValueError(f"{path}: a damaged GRU4Rec checkpoint: its last epoch's model is damaged")
    model = _build(path, payload, last, device)
    best = {key: payload[key] for key in ("params", "state", "generator")}
    try:
        validation = EarlyStopping.from_payload(record, best)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: a damaged GRU4Rec checkpoint: {err}") from None
    epoch = last.get("epoch", payload["epoch"])
    if len(validation.values) != epoch or validation.best_epoch != payload["epoch"]:
        raise ValueError(f"{path}: a damaged GRU4Rec checkpoint: its validation record does not fit its epochs")
    return model, epoch, model.item_ids, validation
