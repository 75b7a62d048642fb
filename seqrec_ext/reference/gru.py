"""Reference GRU ops in eager PyTorch, straight from the formulas (docs/ops.md), with the ops'
signatures (gates ordered (r, z, n); w_hh (3H, H))."""

from __future__ import annotations

import torch


def gru_step(gi, h, w_hh, b_ih=None, b_hh=None, *, reset_after=False):
    H = h.shape[1]
    if b_ih is not None:
        gi = gi + b_ih
    gi_r, gi_z, gi_n = gi.split(H, dim=1)
    if reset_after:
        gh = h @ w_hh.t()
        if b_hh is not None:
            gh = gh + b_hh
        gh_r, gh_z, gh_n = gh.split(H, dim=1)
        r = torch.sigmoid(gi_r + gh_r)
        z = torch.sigmoid(gi_z + gh_z)
        n = torch.tanh(gi_n + r * gh_n)
        return (1 - z) * n + z * h
    gh_rz = h @ w_hh[: 2 * H].t()  # GRU4Rec: one product for r and z ...
    if b_hh is not None:
        gh_rz = gh_rz + b_hh[: 2 * H]
    gh_r, gh_z = gh_rz.split(H, dim=1)
    r = torch.sigmoid(gi_r + gh_r)
    z = torch.sigmoid(gi_z + gh_z)
    gh_n = (r * h) @ w_hh[2 * H :].t()  # ... and one for n, after the reset
    if b_hh is not None:
        gh_n = gh_n + b_hh[2 * H :]
    n = torch.tanh(gi_n + gh_n)
    return (1 - z) * h + z * n


def gru_sequence(gi, h0, w_hh, b_ih=None, b_hh=None, *, reset=None, lengths=None, reset_after=False):
    T, B = gi.shape[:2]
    h = h0
    outs = []
    for t in range(T):
        active = (t < lengths) if lengths is not None else torch.ones(B, dtype=torch.bool, device=gi.device)
        h_in = h
        if reset is not None:
            h_in = torch.where((reset[t] & active).unsqueeze(1), torch.zeros_like(h), h)
        h_new = gru_step(gi[t], h_in, w_hh, b_ih, b_hh, reset_after=reset_after)
        outs.append(torch.where(active.unsqueeze(1), h_new, torch.zeros_like(h_new)))
        h = torch.where(active.unsqueeze(1), h_new, h)
    out = torch.stack(outs) if outs else gi.new_zeros(0, B, h0.shape[1])
    return out, h
