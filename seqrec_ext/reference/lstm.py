"""Reference LSTM op in eager PyTorch, straight from the formulas (docs/ops.md), with the op's
signature (gates ordered (i, f, g, o) as in torch.nn.LSTM; w_hh (4H, H))."""

from __future__ import annotations

import torch


def _cell(gi, h, c, w_hh, b_ih, b_hh):
    a = gi + h @ w_hh.t()
    for b in (b_ih, b_hh):
        if b is not None:
            a = a + b
    a_i, a_f, a_g, a_o = a.chunk(4, dim=1)
    i, f, g, o = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g), torch.sigmoid(a_o)
    c_new = f * c + i * g
    return o * torch.tanh(c_new), c_new


def lstm_sequence(gi, h0, c0, w_hh, b_ih=None, b_hh=None, *, reset=None, lengths=None):
    T, B = gi.shape[:2]
    h, c = h0, c0
    outs = []
    for t in range(T):
        active = (t < lengths) if lengths is not None else torch.ones(B, dtype=torch.bool, device=gi.device)
        h_in, c_in = h, c
        if reset is not None:
            restart = (reset[t] & active).unsqueeze(1)
            h_in = torch.where(restart, torch.zeros_like(h), h)
            c_in = torch.where(restart, torch.zeros_like(c), c)
        h_new, c_new = _cell(gi[t], h_in, c_in, w_hh, b_ih, b_hh)
        keep = active.unsqueeze(1)
        outs.append(torch.where(keep, h_new, torch.zeros_like(h_new)))
        h = torch.where(keep, h_new, h)
        c = torch.where(keep, c_new, c)
    out = torch.stack(outs) if outs else gi.new_zeros(0, B, h0.shape[1])
    return out, h, c
