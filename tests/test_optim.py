"""SparseAdagradM (GRU4Rec's Adagrad with momentum as a torch optimizer) against a plain-PyTorch
re-statement of the rule: a small model with a sparse embedding and dense layers trained step by
step, untouched rows left alone, state_dict round trip, bad arguments."""

import copy

import pytest
import torch
from torch import nn

from seqrec_ext.optim import SparseAdagradM


class TinyRecommender(nn.Module):
    def __init__(self, n_items=60, dim=6):
        super().__init__()
        self.items = nn.Embedding(n_items, dim, sparse=True)
        self.proj = nn.Linear(dim, dim)
        self.out = nn.Embedding(n_items, dim, sparse=True)

    def forward(self, inputs, targets):
        h = torch.tanh(self.proj(self.items(inputs).mean(1)))
        return -(h * self.out(targets)).sum(1).sigmoid().log().mean()


def reference_step(model, state, lr, momentum, eps):
    """The rule written out: dense tensors, the gradients of repeated rows summed (coalesce),
    only the rows present in a sparse gradient touched."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            acc, mom = state.setdefault(name, (torch.zeros_like(p), torch.zeros_like(p)))
            g = p.grad
            if g.is_sparse:
                g = g.coalesce()
                rows, values = g.indices()[0], g.values()
            else:
                rows, values = slice(None), g
            acc[rows] += values * values
            mom[rows] = momentum * mom[rows] - lr * values / torch.sqrt(acc[rows] + eps)
            p[rows] += mom[rows]


def batches(n, seed=0, n_items=60):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        # few items, many repeats: every step has duplicate rows and untouched rows
        yield torch.randint(0, n_items // 3, (16, 4), generator=g), torch.randint(0, n_items // 2, (16,), generator=g)


def train(model, step, n=12):
    for inputs, targets in batches(n):
        model.zero_grad(set_to_none=True)
        model(inputs, targets).backward()
        step()


@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_trains_like_the_rule(momentum):
    torch.manual_seed(0)
    ours = TinyRecommender().double()
    ref = copy.deepcopy(ours)
    untouched = ours.items.weight[40:].clone()
    opt = SparseAdagradM(ours.parameters(), lr=0.1, momentum=momentum, eps=1e-6)
    state = {}
    train(ours, opt.step)
    train(ref, lambda: reference_step(ref, state, 0.1, momentum, 1e-6))
    for (name, a), b in zip(ours.named_parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=name)
    assert torch.equal(ours.items.weight[40:], untouched)
    assert not opt.state[ours.items.weight]["sum"][40:].any()
    assert not torch.equal(ours.proj.weight, TinyRecommender().double().proj.weight)


def test_state_dict_resumes_exactly():
    torch.manual_seed(1)
    model = TinyRecommender()
    twin = copy.deepcopy(model)
    opt = SparseAdagradM(model.parameters(), lr=0.05, momentum=0.3)
    train(model, opt.step, n=10)
    # the twin: 5 steps, a save and a fresh optimizer that loads it, 5 more
    opt_a = SparseAdagradM(twin.parameters(), lr=0.05, momentum=0.3)
    data = list(batches(10))
    for inputs, targets in data[:5]:
        twin.zero_grad(set_to_none=True)
        twin(inputs, targets).backward()
        opt_a.step()
    opt_b = SparseAdagradM(twin.parameters(), lr=0.05, momentum=0.3)
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))
    for inputs, targets in data[5:]:
        twin.zero_grad(set_to_none=True)
        twin(inputs, targets).backward()
        opt_b.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.equal(a, b)


def test_closure_and_parameters_without_gradients():
    model = TinyRecommender()
    frozen = model.out.weight.clone()
    model.out.weight.requires_grad_(False)
    opt = SparseAdagradM(model.parameters(), lr=0.1)
    inputs, targets = next(batches(1))

    def closure():
        loss = model(inputs, targets)
        loss.backward()
        return loss

    assert torch.is_tensor(opt.step(closure)) and torch.equal(model.out.weight, frozen)
    assert model.items.weight.grad is not None


def test_bad_arguments():
    p = [nn.Parameter(torch.zeros(3))]
    for kwargs, match in [
        (dict(lr=0.0), "lr"),
        (dict(momentum=1.0), "momentum"),
        (dict(eps=0.0), "eps"),
        (dict(initial_accumulator_value=-1.0), "initial_accumulator_value"),
    ]:
        with pytest.raises(ValueError, match=match):
            SparseAdagradM(p, **kwargs)
    half = nn.Parameter(torch.zeros(3, dtype=torch.float16))
    half.grad = torch.ones(3, dtype=torch.float16)
    with pytest.raises(RuntimeError, match="float32 or float64"):
        SparseAdagradM([half], lr=0.1).step()
