"""NT-Xent: a naive reference loop, closed-form values, symmetry, errors, gradients, and the
distributed gather (2 CPU processes, gloo, DDP) against a single process on the whole batch."""
from __future__ import annotations

import datetime

import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from pe_utils.learn import ntxent
from pe_utils.learn.ntxent import NTXentLoss


def _naive_ntxent(z_a: torch.Tensor, z_b: torch.Tensor, t: float) -> float:
    """The loss from scratch in plain Python: view i's twin is i + N (mod 2N) and
    l_i = -log(exp(s_ij / t) / sum_{k != i} exp(s_ik / t)), averaged over the 2N views."""
    views = z_a.tolist() + z_b.tolist()
    n2 = len(views)

    def cos(u, v):
        dot = sum(a * b for a, b in zip(u, v))
        return dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)))

    total = 0.0
    for i in range(n2):
        j = (i + n2 // 2) % n2
        denominator = sum(math.exp(cos(views[i], views[k]) / t) for k in range(n2) if k != i)
        total += -math.log(math.exp(cos(views[i], views[j]) / t) / denominator)
    return total / n2


@pytest.mark.parametrize("t", [0.05, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("n,d", [(1, 3), (2, 3), (5, 16), (8, 4)])
def test_matches_naive_reference(n, d, t):
    g = torch.Generator().manual_seed(n * 100 + d)
    z_a, z_b = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
    got = float(NTXentLoss(temperature=t)(z_a, z_b))
    assert got == pytest.approx(_naive_ntxent(z_a, z_b, t), abs=1e-5)


def test_default_temperature_is_thesis_value():
    assert NTXentLoss().temperature == 0.1


def test_symmetric_in_the_two_views():
    g = torch.Generator().manual_seed(1)
    z_a, z_b = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    loss = NTXentLoss(0.2)
    assert float(loss(z_a, z_b)) == pytest.approx(float(loss(z_b, z_a)), abs=1e-6)


def test_scale_invariant_cosine():
    g = torch.Generator().manual_seed(2)
    z_a, z_b = torch.randn(4, 5, generator=g), torch.randn(4, 5, generator=g)
    loss = NTXentLoss(0.1)
    assert float(loss(3.0 * z_a, 0.5 * z_b)) == pytest.approx(float(loss(z_a, z_b)), abs=1e-5)


@pytest.mark.parametrize("t", [0.1, 0.5])
def test_orthogonal_images_aligned_twins_closed_form(t):
    # views e1, e2 | e1, e2: each anchor has its twin at s = 1 and two negatives at s = 0
    e = torch.eye(2, dtype=torch.float64)  # float64: log(1 + 2e^-10) is below float32's resolution
    expected = -math.log(math.exp(1 / t) / (math.exp(1 / t) + 2 * math.exp(0.0)))
    assert expected == pytest.approx(math.log(1 + 2 * math.exp(-1 / t)))
    assert float(NTXentLoss(t)(e, e.clone())) == pytest.approx(expected, rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("t", [0.1, 0.5])
def test_antipodal_negatives_reach_the_minimum(t):
    # views e1, -e1 | e1, -e1: twin at s = 1, both negatives at s = -1 (cosine's lowest)
    z = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64)  # float64: the value is ~4e-9
    minimum = math.log(1 + 2 * math.exp(-2 / t))
    got = float(NTXentLoss(t)(z, z.clone()))
    assert got == pytest.approx(minimum, rel=1e-5, abs=1e-9)
    eye = torch.eye(2, dtype=torch.float64)
    assert got < float(NTXentLoss(t)(eye, eye))
    g = torch.Generator().manual_seed(3)
    for _ in range(5):  # no pair of N=2 views does better
        z_a, z_b = (torch.randn(2, 2, generator=g, dtype=torch.float64) for _ in range(2))
        assert float(NTXentLoss(t)(z_a, z_b)) > got


@pytest.mark.parametrize("n", [1, 3, 7])
def test_all_views_identical_gives_log_2n_minus_1(n):
    z = torch.ones(n, 4)
    assert float(NTXentLoss(0.1)(z, z.clone())) == pytest.approx(math.log(2 * n - 1), abs=1e-5)


@pytest.mark.parametrize("t", [0.0, -1.0, float("nan")])
def test_non_positive_temperature_raises(t):
    with pytest.raises(ValueError, match="temperature"):
        NTXentLoss(temperature=t)


@pytest.mark.parametrize("shape_a,shape_b", [((3, 4), (3, 5)), ((3, 4), (2, 4)), ((4,), (4,)),
                                             ((0, 4), (0, 4)), ((2, 3, 4), (2, 3, 4))])
def test_bad_shapes_raise_naming_them(shape_a, shape_b):
    with pytest.raises(ValueError, match=r"got \(.*\) and \(.*\)") as info:
        NTXentLoss()(torch.randn(shape_a), torch.randn(shape_b))
    assert str(tuple(shape_a)) in str(info.value) and str(tuple(shape_b)) in str(info.value)


def test_gradients_reach_both_views():
    g = torch.Generator().manual_seed(4)
    z_a = torch.randn(4, 6, generator=g, requires_grad=True)
    z_b = torch.randn(4, 6, generator=g, requires_grad=True)
    NTXentLoss()(z_a, z_b).backward()
    for z in (z_a, z_b):
        assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
        assert (z.grad.abs().sum(dim=1) > 0).all()  # every row gets a gradient


def test_half_precision_is_computed_in_float32():
    g = torch.Generator().manual_seed(5)
    z_a, z_b = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)
    low = NTXentLoss()(z_a.bfloat16(), z_b.bfloat16())
    assert low.dtype == torch.float32
    assert float(low) == pytest.approx(float(NTXentLoss()(z_a, z_b)), abs=0.05)


def test_autocast_does_not_lower_the_precision():
    g = torch.Generator().manual_seed(7)
    z_a, z_b = torch.randn(6, 32, generator=g), torch.randn(6, 32, generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = NTXentLoss()(z_a, z_b)
    assert low.dtype == torch.float32
    assert float(low) == pytest.approx(float(NTXentLoss()(z_a, z_b)), abs=1e-6)


def test_gather_without_process_group_is_the_plain_loss():
    assert not dist.is_initialized()
    g = torch.Generator().manual_seed(6)
    z_a, z_b = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    assert torch.equal(NTXentLoss(gather_distributed=True)(z_a, z_b), NTXentLoss()(z_a, z_b))


# ---- distributed: DDP over 2 CPU processes equals one process over the whole batch ----

WORLD, N_TOTAL, D_IN, D_OUT = 2, 6, 8, 4


def _fixed_batch():
    g = torch.Generator().manual_seed(10)
    x_a = torch.randn(N_TOTAL, D_IN, generator=g, dtype=torch.float64)
    x_b = x_a + 0.3 * torch.randn(N_TOTAL, D_IN, generator=g, dtype=torch.float64)
    return x_a, x_b


def _tiny_model():
    torch.manual_seed(11)
    return torch.nn.Linear(D_IN, D_OUT).double()


def _gather_detached(x):
    """Wrong on purpose: a plain all_gather carries no gradient to other processes' losses."""
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.detach().contiguous())
    return torch.cat(parts)


class _GatherSliced(torch.autograd.Function):
    """Wrong on purpose: the backward keeps this rank's slice without summing over ranks."""

    @staticmethod
    def forward(ctx, x):
        ctx.rank, ctx.rows = dist.get_rank(), x.shape[0]
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad):
        return grad[ctx.rank * ctx.rows:(ctx.rank + 1) * ctx.rows]


GATHERS = {"correct": ntxent.all_gather_with_grad, "detached": _gather_detached,
           "sliced": _GatherSliced.apply}


def _worker(rank, init_file, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD,
                            timeout=datetime.timedelta(seconds=300))  # a loaded 2-core machine is slow
    try:
        x_a, x_b = _fixed_batch()
        rows = slice(rank * N_TOTAL // WORLD, (rank + 1) * N_TOTAL // WORLD)  # this rank's half
        for name, gather in GATHERS.items():
            ntxent.all_gather_with_grad = gather  # the loss looks the name up at call time
            model = DistributedDataParallel(_tiny_model())
            z = model(torch.cat([x_a[rows], x_b[rows]]))        # (2 * N/2, D_OUT)
            z_a, z_b = z.chunk(2)
            loss = NTXentLoss(0.1, gather_distributed=True)(z_a, z_b)
            loss.backward()
            torch.save({"loss": loss.detach(), "grads": [p.grad.clone() for p in model.parameters()]},
                       f"{out_dir}/{name}_{rank}.pt")
            del model  # DDP's reducer holds gloo work: release it before the group goes
        dist.barrier()  # no process tears the group down while the other still uses it
        open(f"{out_dir}/done_{rank}", "w").close()   # every result of this rank is on disk
    finally:
        dist.destroy_process_group()


def test_distributed_gather_equals_single_process_on_the_whole_batch(tmp_path):
    context = mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=False)
    for process in context.processes:
        process.join(600)
    if not all((tmp_path / f"done_{rank}").exists() for rank in range(WORLD)):
        context.join()   # a worker stopped before its results: raise with its traceback or signal
    # Both ranks saved their results and passed the barrier. What is left is gloo's teardown,
    # which on a loaded 2-core machine can abort a process at exit ("terminate called without
    # an active exception"): that is not the loss under test, so it is not a failure here.
    for process in context.processes:
        if process.is_alive():
            process.kill()

    model = _tiny_model()
    x_a, x_b = _fixed_batch()
    reference = NTXentLoss(0.1)(model(x_a), model(x_b))
    reference.backward()
    reference = reference.detach()
    expected = [p.grad for p in model.parameters()]

    results = {(name, rank): torch.load(tmp_path / f"{name}_{rank}.pt")
               for name in GATHERS for rank in range(WORLD)}
    for rank in range(WORLD):
        got = results["correct", rank]["grads"]
        for g, e in zip(got, expected):
            torch.testing.assert_close(g, e, atol=1e-6, rtol=0)
    # each process's loss is the mean over its own anchors: their mean is the global loss
    mean_loss = sum(float(results["correct", r]["loss"]) for r in range(WORLD)) / WORLD
    assert mean_loss == pytest.approx(float(reference), abs=1e-9)
    # the test can fail: the same losses with a wrong gather give other gradients
    for wrong in ("detached", "sliced"):
        assert float(results[wrong, 0]["loss"]) == pytest.approx(float(results["correct", 0]["loss"]))
        diff = max(float((g - e).abs().max()) for g, e in zip(results[wrong, 0]["grads"], expected))
        assert diff > 1e-3, f"{wrong} gather was not caught (max gradient difference {diff})"
