"""Random one-layer GRU4Rec parameters in any embedding mode, for the tests of the step ops."""

import torch

from seqrec_ext import GRU4RecParams


def random_params(embedding, n_items, hidden, width, *, b_hh=False, dtype=torch.float64, device="cpu", seed=0):
    """GRU4RecParams with entries ~ N(0, 0.4^2); ``width``: the separate embedding's width."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*s):
        return (torch.randn(*s, generator=g, dtype=torch.float64) * 0.4).to(device, dtype)

    H = hidden
    kw = dict(w_hh=rnd(3 * H, H), b_h=rnd(3 * H), out_table=rnd(n_items, H), out_bias=rnd(n_items))
    kw.update(embedding=embedding, b_hh=rnd(3 * H) if b_hh else None)
    if embedding == "none":
        kw["item_in"] = rnd(n_items, 3 * H)
    elif embedding == "separate":
        kw.update(item_in=rnd(n_items, width), w_in=rnd(width, 3 * H))
    else:
        kw["w_in"] = rnd(H, 3 * H)
    return GRU4RecParams(**kw)
