"""FlatAdam: torch's foreach Adam, bit for bit, updated as one flat vector."""

import io

import torch

from uboost.strategy.flat_adam import FlatAdam

SIZES = [3] * 40 + [2] * 5 + [5] * 4 + [8] * 3 + [4] * 2  # alphas of a supernet with bits (sizes 2-8)
OPTIONS = dict(betas=(0.5, 0.999), weight_decay=1e-3)


def alphas(seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(n, generator=g) * 1e-3) for n in SIZES]


def gradients(steps, seed=2, skip=()):
    """Per step, per alpha: a gradient over 8 orders of magnitude (or None for (step, alpha) in ``skip``)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for step in range(steps):
        row = []
        for k, n in enumerate(SIZES):
            grad = torch.randn(n, generator=g) * 10.0 ** int(torch.randint(-6, 2, (1,), generator=g))
            row.append(None if (step, k) in skip else grad)
        out.append(row)
    return out


def run(optimizer_cls, params, grads, **kwargs):
    optimizer = optimizer_cls(params, 0.1, **OPTIONS, **kwargs)
    for row in grads:
        for p, grad in zip(params, row):
            p.grad = None if grad is None else grad.clone()
        optimizer.step()
    return optimizer


def assert_same(a_params, a_opt, b_params, b_opt):
    for a, b in zip(a_params, b_params):
        assert torch.equal(a, b)
        sa, sb = a_opt.state[a], b_opt.state[b]
        assert sa.keys() == sb.keys()
        for key in sa:
            assert torch.equal(sa[key], sb[key]), key


def test_same_numbers_as_torch_foreach_adam():
    ref, flat = alphas(), alphas()
    grads = gradients(30)
    ref_opt = run(torch.optim.Adam, ref, grads, foreach=True)
    flat_opt = run(FlatAdam, flat, grads)
    assert flat_opt._flat is not None  # the flat path ran
    assert_same(ref, ref_opt, flat, flat_opt)


def test_parameters_not_vectors_take_the_reshaping_path():
    """The search's alphas are vectors (concatenated as they are); a matrix or a scalar among them is
    flattened for the update and copied back in its shape, with the same numbers."""
    g = torch.Generator().manual_seed(3)
    shapes = [(3,), (2, 4), (), (5,)]
    ref, flat = ([torch.nn.Parameter(torch.randn(s, generator=g)) for s in shapes] for _ in range(2))
    for a, b in zip(ref, flat):
        b.data.copy_(a.data)
    grads = [[torch.randn(s, generator=g) for s in shapes] for _ in range(10)]
    ref_opt = run(torch.optim.Adam, ref, grads, foreach=True)
    flat_opt = run(FlatAdam, flat, grads)
    assert flat_opt._flat is not None and not flat_opt._flat[5] and flat_opt._flat[0][1].shape == (2, 4)
    assert_same(ref, ref_opt, flat, flat_opt)
    assert run(FlatAdam, alphas(), gradients(2))._flat[5]  # the search's: vectors


def test_an_alpha_without_gradient_falls_back_to_torch():
    """Step 5 leaves alpha 3 without a gradient: torch skips it (its step count stays behind); from
    then on the counts differ and torch's own step runs, with the same numbers."""
    ref, flat = alphas(), alphas()
    grads = gradients(12, skip={(5, 3)})
    ref_opt = run(torch.optim.Adam, ref, grads, foreach=True)
    flat_opt = run(FlatAdam, flat, grads)
    assert_same(ref, ref_opt, flat, flat_opt)
    assert float(flat_opt.state[flat[3]]["step"]) == 11.0 and float(flat_opt.state[flat[0]]["step"]) == 12.0


def test_state_dict_round_trip_continues_identically():
    """A checkpoint of FlatAdam loads into torch's Adam and the reverse, and both continue the same."""
    grads = gradients(20)
    ref, flat = alphas(), alphas()
    ref_opt = run(torch.optim.Adam, ref, grads[:10], foreach=True)
    flat_opt = run(FlatAdam, flat, grads[:10])

    def checkpoint(optimizer):  # as written to and read from a file (state_dict() holds the live tensors)
        buffer = io.BytesIO()
        torch.save(optimizer.state_dict(), buffer)
        buffer.seek(0)
        return torch.load(buffer)

    # the flat optimizer's checkpoint, into a fresh torch Adam over copies of the parameters
    resumed = [torch.nn.Parameter(p.detach().clone()) for p in flat]
    torch_opt = torch.optim.Adam(resumed, 0.1, **OPTIONS, foreach=True)
    torch_opt.load_state_dict(checkpoint(flat_opt))
    # torch's checkpoint into a fresh FlatAdam
    again = [torch.nn.Parameter(p.detach().clone()) for p in ref]
    flat_again = FlatAdam(again, 0.1, **OPTIONS)
    flat_again.load_state_dict(checkpoint(ref_opt))
    for params, optimizer in ((ref, ref_opt), (flat, flat_opt), (resumed, torch_opt), (again, flat_again)):
        for row in grads[10:]:
            for p, grad in zip(params, row):
                p.grad = grad.clone()
            optimizer.step()
    assert_same(ref, ref_opt, flat, flat_opt)
    assert_same(ref, ref_opt, resumed, torch_opt)
    assert_same(ref, ref_opt, again, flat_again)


def test_other_options_use_torch_step():
    params = alphas()
    optimizer = FlatAdam(params, 0.1, **OPTIONS)
    optimizer.param_groups[0]["amsgrad"] = True
    for p in params:
        p.grad = torch.ones_like(p)
    optimizer.step()
    assert optimizer._flat is None and "max_exp_avg_sq" in optimizer.state[params[0]]


def test_a_closure_runs_first_and_its_loss_is_returned():
    """Lightning steps optimizers with a closure: it runs (with gradients on) before the flat update."""
    params = alphas()
    ref = [torch.nn.Parameter(p.detach().clone()) for p in params]
    flat_opt = FlatAdam(params, 0.1, **OPTIONS)
    ref_opt = torch.optim.Adam(ref, 0.1, **OPTIONS, foreach=True)
    for optimizer, ps in ((flat_opt, params), (ref_opt, ref)):
        def closure(ps=ps):
            loss = sum((p * p).sum() for p in ps)
            loss.backward()
            return loss
        for _ in range(3):
            optimizer.zero_grad()
            loss = optimizer.step(closure)
        assert loss is not None
    assert flat_opt._flat is not None
    assert_same(ref, ref_opt, params, flat_opt)
