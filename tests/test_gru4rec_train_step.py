"""gru4rec_train_step_ (the whole step and its update in one op) against the op-by-op path it
fuses — seqrec_ext.gru4rec_step, then sparse_adagrad_momentum_ / adagrad_momentum_ per
parameter: bitwise (CPU) the same parameters, state, loss and new hidden state over several steps
in every embedding mode, with and without the hidden bias (repeated ids, dropout from the same
generator draws, logQ, a normaliser); nothing updated on a non-finite loss; opcheck; bad input."""

import pytest
import torch
from conftest import requires_cuda
from gru4rec_params import random_params

from seqrec_ext import (
    GRU4RecParams,
    adagrad_momentum_,
    gru4rec_step,
    gru4rec_train_step_,
    sparse_adagrad_momentum_,
    train_step_param_names,
)

N_ITEMS, H, E = 50, 8, 5


def names_of(p):
    return train_step_param_names(p.embedding, p.b_hh is not None)


def make_model(device, dtype=torch.float32, seed=0, embedding="none", b_hh=False):
    p = random_params(embedding, N_ITEMS, H, E, b_hh=b_hh, dtype=dtype, device=device, seed=seed)
    accs = [torch.zeros_like(getattr(p, n)) for n in names_of(p)]
    moms = [torch.zeros_like(getattr(p, n)) for n in names_of(p)]
    return p, accs, moms


def clone(p, accs, moms):
    q = GRU4RecParams(**{n: getattr(p, n).clone() for n in names_of(p)}, embedding=p.embedding)
    return q, [a.clone() for a in accs], [m.clone() for m in moms]


def op_by_op_step(p, accs, moms, item_ids, target_ids, negative_ids, h, *, lr, momentum, **kw):
    result = gru4rec_step(p, item_ids, target_ids, negative_ids, h, **kw)
    if torch.isfinite(result.loss):
        for name, acc, mom in zip(names_of(p), accs, moms):
            param = getattr(p, name)
            if name in result.row_grads:
                rows = result.row_grads[name]
                view = (lambda t: t.view(-1, 1)) if param.dim() == 1 else (lambda t: t)
                sparse_adagrad_momentum_(
                    view(param), view(acc), view(mom), rows.indices, view(rows.values), lr=lr, momentum=momentum
                )
            else:
                adagrad_momentum_(param, acc, mom, result.dense_grads[name], lr=lr, momentum=momentum)
    return result.loss, result.h_new


def steps(device, B=6, S=20, n=4, seed=3):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        item_ids = torch.randint(0, N_ITEMS, (B,), generator=g)
        item_ids[1] = item_ids[0]  # a repeated input
        target_ids = torch.randint(0, N_ITEMS, (B,), generator=g)
        negative_ids = torch.randint(0, N_ITEMS, (S,), generator=g)
        negative_ids[0] = target_ids[2]  # a negative that is also a target
        yield item_ids.to(device), target_ids.to(device), negative_ids.to(device)


MODES = [("none", False), ("separate", True), ("separate", False), ("constrained", True), ("constrained", False)]


@pytest.mark.parametrize("loss", ["bpr-max", "cross-entropy", "top1-max"])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("reset_after", [False, True])
@pytest.mark.parametrize("embedding,b_hh", MODES)
def test_bitwise_equal_to_the_op_by_op_path(loss, dropout, reset_after, embedding, b_hh, device):
    """Bitwise on the CPU; on CUDA within rounding (the fused and op-by-op paths are the same
    kernels, but cuBLAS may pick other algorithms for the products of other shapes)."""

    def same(a, b):
        if device.type == "cpu":
            assert torch.equal(a, b)
        else:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)

    fused = make_model(device, embedding=embedding, b_hh=b_hh)
    unfused = clone(*make_model(device, embedding=embedding, b_hh=b_hh))
    gens = [torch.Generator(device=device).manual_seed(7) for _ in range(2)]
    h_f = h_u = torch.zeros(6, H, device=device)
    log_counts = torch.rand(N_ITEMS, generator=torch.Generator().manual_seed(1)).to(device) * 3
    for item_ids, target_ids, negative_ids in steps(device):
        logq = torch.cat([log_counts[target_ids], 0.5 * log_counts[negative_ids]]) if loss == "cross-entropy" else None
        kw = dict(
            loss=loss,
            bpreg=0.7 if loss == "bpr-max" else 0.0,
            elu_param=0.5 if loss == "bpr-max" else 0.0,
            logq_correction=logq,
            dropout_embed=dropout,
            dropout_hidden=dropout / 2,
            reset_after=reset_after,
            normalizer=None if dropout else 9.0,
            lr=0.05,
            momentum=0.4,
        )
        value_f, h_f = gru4rec_train_step_(*fused, item_ids, target_ids, negative_ids, h_f, generator=gens[0], **kw)
        value_u, h_u = op_by_op_step(*unfused, item_ids, target_ids, negative_ids, h_u, generator=gens[1], **kw)
        same(value_f, value_u)
        same(h_f, h_u)
    for name, acc_f, acc_u, mom_f, mom_u in zip(names_of(fused[0]), fused[1], unfused[1], fused[2], unfused[2]):
        same(getattr(fused[0], name), getattr(unfused[0], name))
        same(acc_f, acc_u)
        same(mom_f, mom_u)
        assert acc_f.any(), name  # the step did update every parameter


def test_reset_rows_read_as_zero(device):
    """reset zeroes the new sessions' rows of the state the step starts from (h is not changed):
    the same step as one on h with those rows zeroed."""
    a, b = make_model(device), clone(*make_model(device))
    item_ids, target_ids, negative_ids = next(steps(device))
    h = torch.rand(6, H, device=device)
    reset = torch.tensor([True, False, False, True, False, True], device=device)
    kw = dict(loss="bpr-max", bpreg=0.5, elu_param=0.5, lr=0.05, momentum=0.4)
    h_before = h.clone()
    value_a, h_a = gru4rec_train_step_(*a, item_ids, target_ids, negative_ids, h, reset=reset, **kw)
    assert torch.equal(h, h_before)
    value_b, h_b = gru4rec_train_step_(*b, item_ids, target_ids, negative_ids, h.masked_fill(reset[:, None], 0), **kw)
    assert torch.equal(value_a, value_b) and torch.equal(h_a, h_b)
    # (on CUDA the update kernels are others: they may round differently in the last bits)
    torch.testing.assert_close(
        a[0].out_table,
        b[0].out_table,
        rtol=0 if device.type == "cpu" else 1e-5,
        atol=0 if device.type == "cpu" else 1e-6,
    )


def test_non_finite_loss_updates_nothing(device):
    p, accs, moms = make_model(device)
    p.out_table[4] = float("nan")
    before = clone(p, accs, moms)
    item_ids, target_ids, negative_ids = next(steps(device))
    target_ids[0] = 4
    value, _ = gru4rec_train_step_(
        p,
        accs,
        moms,
        item_ids,
        target_ids,
        negative_ids,
        torch.zeros(6, H, device=device),
        loss="bpr-max",
        lr=0.05,
        momentum=0.4,
    )
    assert not torch.isfinite(value)
    for a, b in zip(accs + moms, before[1] + before[2]):
        assert torch.equal(a, b)
    for name in names_of(p):  # (the NaN row compares equal to itself here)
        assert torch.allclose(getattr(p, name), getattr(before[0], name), equal_nan=True, rtol=0, atol=0), name


@requires_cuda
@pytest.mark.parametrize("embedding", ["none", "constrained"])
def test_the_step_replays_from_a_cuda_graph(embedding):
    """The step waits for nothing on the host (the non-finite check is a flag the update kernels
    read, duplicate rows are sorted on the device), so a CUDA graph captures it; replayed, it
    gives what eager steps give."""
    kw = dict(loss="bpr-max", lr=0.05, momentum=0.4)
    eager, graphed = make_model("cuda", embedding=embedding), make_model("cuda", embedding=embedding)
    names = names_of(eager[0])
    batches = list(steps("cuda", n=4))
    h_eager = torch.zeros(6, H, device="cuda")
    eager_losses = []
    for ids in batches:
        value, h_eager = gru4rec_train_step_(eager[0], eager[1], eager[2], *ids, h_eager, **kw)
        eager_losses.append(value)
    # static inputs the graph reads; each replay is fed by copying into them
    static_ids = [t.clone() for t in batches[0]]
    static_h = torch.zeros(6, H, device="cuda")
    params = [getattr(graphed[0], n) for n in names]
    warm = make_model("cuda", embedding=embedding)  # a side stream warm-up on other tensors
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        gru4rec_train_step_(warm[0], warm[1], warm[2], *static_ids, static_h.clone(), **kw)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_value, static_h_new = torch.ops.seqrec.gru4rec_train_step_(
            params, graphed[1], graphed[2], *static_ids, static_h, None, None, None, None,
            embedding, "bpr-max", 0.0, 0.0, False, None, 0.05, 0.4, 1e-6,
        )  # fmt: skip
    losses = []
    for ids in batches:
        for dst, src in zip(static_ids, ids):
            dst.copy_(src)
        graph.replay()
        losses.append(static_value.clone())
        static_h.copy_(static_h_new)
    torch.testing.assert_close(torch.stack(losses), torch.stack(eager_losses), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(static_h, h_eager, rtol=1e-5, atol=1e-6)
    for name in names:
        torch.testing.assert_close(getattr(graphed[0], name), getattr(eager[0], name), rtol=1e-5, atol=1e-6)


def op_args(device, dtype=torch.float32, embedding="none", b_hh=False):
    p, accs, moms = make_model(device, dtype, embedding=embedding, b_hh=b_hh)
    item_ids, target_ids, negative_ids = next(steps(device))
    return (
        [getattr(p, n) for n in names_of(p)],
        accs,
        moms,
        item_ids,
        target_ids,
        negative_ids,
        torch.rand(6, H, device=device, dtype=dtype),
        torch.tensor([True, False] * 3, device=device),
        None,
        None,
        None,
        embedding,
        "bpr-max",
        0.5,
        0.5,
        False,
        32.0,
        0.05,
        0.4,
        1e-6,
    )


@pytest.mark.parametrize("embedding,b_hh", MODES)
def test_opcheck(embedding, b_hh, device):
    for dtype in (torch.float32, torch.float64):
        torch.library.opcheck(torch.ops.seqrec.gru4rec_train_step_.default, op_args(device, dtype, embedding, b_hh))


def test_bad_inputs():
    args = op_args("cpu")
    op = torch.ops.seqrec.gru4rec_train_step_
    bad = list(args)
    bad[0] = args[0][:4]
    with pytest.raises(
        RuntimeError,
        match=r"params of embedding 'none' must be \(item_in, out_table, out_bias, "
        r"w_hh, b_h\) or \(item_in, out_table, out_bias, w_hh, b_h, b_hh\)",
    ):
        op(*bad)
    bad = list(args)
    bad[11] = "tied"
    with pytest.raises(ValueError, match="unknown embedding 'tied'"):
        op(*bad)
    bad = list(args)
    bad[16] = 0.0
    with pytest.raises(ValueError, match="normalizer must be finite and > 0"):
        op(*bad)
    sep = op_args("cpu", embedding="separate")
    bad = list(sep)
    bad[0] = sep[0][:5] + [sep[0][5][:, :6]]
    with pytest.raises(RuntimeError, match=r"w_in must be \(5, 24\)"):
        op(*bad)
    bad = list(args)
    bad[1] = args[1][:2] + [args[1][2][:3]] + args[1][3:]
    with pytest.raises(RuntimeError, match="accumulator and momentum buffer of out_bias"):
        op(*bad)
    bad = list(args)  # a state the last update would refuse: nothing is updated before the check
    bad[2] = args[2][:4] + [args[2][4].double()]
    before = [t.clone() for t in args[0]]
    with pytest.raises(RuntimeError, match="accumulator and momentum buffer of b_h"):
        op(*bad)
    assert all(torch.equal(a, b) for a, b in zip(args[0], before))
    bad = list(args)
    bad[0] = [args[0][0][:, :5]] + args[0][1:]
    with pytest.raises(RuntimeError, match=r"item_in of embedding .none. must be \(N, 3H\)"):
        op(*bad)
    bad = list(args)
    bad[5] = torch.tensor([N_ITEMS])  # a negative id past the table
    with pytest.raises(IndexError):
        op(*bad)
    bad = list(args)
    bad[4] = args[4][:3]
    with pytest.raises(RuntimeError, match="the same length"):
        op(*bad)
    bad = list(args)
    bad[9] = torch.ones(6, 5)
    with pytest.raises(RuntimeError, match="embed_mask must be"):
        op(*bad)
    bad = list(args)
    bad[7] = torch.ones(6)
    with pytest.raises(RuntimeError, match="reset must be a"):
        op(*bad)
    with pytest.raises(ValueError, match="dropout probabilities"):
        gru4rec_train_step_(make_model("cpu")[0], args[1], args[2], *args[3:7], lr=0.1, dropout_embed=1.0)


def test_parameter_names_are_the_op_s_own():
    """The names Python hands the op come from the op's one list: each embedding mode's
    parameters, b_hh last; an unknown mode is the op's own error."""
    assert train_step_param_names("constrained", False) == ("out_table", "out_bias", "w_hh", "b_h", "w_in")
    assert train_step_param_names("separate", True) == (
        "item_in",
        "out_table",
        "out_bias",
        "w_hh",
        "b_h",
        "w_in",
        "b_hh",
    )
    assert train_step_param_names("none", False) == ("item_in", "out_table", "out_bias", "w_hh", "b_h")
    from seqrec_ext.gru4rec_step import EMBEDDING_MODES
    from seqrec_ext.sampled_loss import LOSSES

    assert EMBEDDING_MODES == ("constrained", "separate", "none")
    assert LOSSES == ("bpr-max", "top1-max", "cross-entropy", "bpr", "top1")
    with pytest.raises(
        ValueError, match="gru4rec_train_step_: unknown embedding 'tied'; expected constrained, separate or none"
    ):
        train_step_param_names("tied", False)
