"""Random numbers on the device: Philox streams, seeds, stochastic equations."""
import numpy as np
import pytest
from brian2 import NeuronGroup, get_device, ms, run, seed

from conftest import on_device
from spikegpu import rng_reference


def draw(seed_value, n=2000):
    seed(seed_value)
    G = NeuronGroup(n, "u : 1\nz : 1")
    G.u = "rand()"
    G.z = "randn()"
    return G.u[:].copy(), G.z[:].copy()


def draw_with_method(seed_value, method):
    # (conftest puts the device's settings back after the test)
    get_device().normal_method = method
    u, z = draw(seed_value)
    return u, z, np.array(get_device().normals())


@pytest.mark.parametrize("method", ["auto", "box-muller", "ziggurat"])
def test_rand_matches_reference_stream_bitwise(backend, method):
    u, z, used = on_device(backend, draw_with_method, 1234, method)
    assert method == "auto" or str(used) == method
    # first code object after reinit: stream 1; one-off invocation 1
    idx = np.arange(len(u), dtype=np.uint32)
    ref_u = rng_reference.uniform(1234, 0, idx, 1, 1)
    assert np.array_equal(u.view(np.uint64), ref_u.view(np.uint64))
    ref_z = rng_reference.normal(1234, 0, idx, 2, 2, method=str(used))
    assert np.array_equal(z.view(np.uint64), ref_z.view(np.uint64))


def test_normal_method_checked():
    from spikegpu.device import GPUDevice
    dev = GPUDevice()
    dev.normal_method = "polar"
    with pytest.raises(ValueError, match="polar"):
        dev.normals()


def test_seed_reproducible_and_statistics(backend):
    u1, z1 = on_device(backend, draw, 42, 20000)
    u2, z2 = on_device(backend, draw, 42, 20000)
    u3, _ = on_device(backend, draw, 43, 20000)
    assert np.array_equal(u1, u2) and np.array_equal(z1, z2)
    assert not np.array_equal(u1, u3)
    assert 0 <= u1.min() and u1.max() < 1
    assert abs(u1.mean() - 0.5) < 0.01 and abs(u1.var() - 1 / 12) < 0.005
    assert abs(z1.mean()) < 0.03 and abs(z1.std() - 1) < 0.02


def ou_process(method):
    seed(7)
    G = NeuronGroup(4000, "dv/dt = -v/(10*ms) + 0.5*sqrt(2/(10*ms))*xi : 1",
                    method=method)
    run(50 * ms)
    return G.v[:].copy()


@pytest.mark.parametrize("method", ["euler", "milstein", "heun"])
def test_stochastic_equation_statistics(backend, method):
    # Ornstein-Uhlenbeck started at 0: variance 0.25*(1 - exp(-2 t/tau))
    v = on_device(backend, ou_process, method)
    expected_var = 0.25 * (1 - np.exp(-2 * 50 / 10))
    # 4000 samples: standard error of the variance ~ 2.2 %; allow 4 sigma
    assert abs(v.var() / expected_var - 1) < 0.09
    assert abs(v.mean()) < 4 * np.sqrt(expected_var / 4000)


def poisson_input(N, rate_hz):
    from brian2 import Hz, PoissonInput
    seed(3)
    G = NeuronGroup(4000, "v : 1")
    P = PoissonInput(G, "v", N, rate_hz * Hz, weight=1.0)  # noqa: F841 (kept alive)
    run(2 * ms)                                  # 20 draws per neuron
    return G.v[:].copy()


@pytest.mark.parametrize("N, rate_hz", [(20, 50.0), (2000, 100.0)])
def test_poisson_input_statistics(backend, N, rate_hz):
    """PoissonInput adds binomial(N, rate*dt) per step: by inversion for
    small N*p (integer counts), by a normal approximation for large."""
    v = on_device(backend, poisson_input, N, rate_hz)
    p, steps = rate_hz * 1e-4, 20
    mean, var = steps * N * p, steps * N * p * (1 - p)
    # 4000 samples: 5 sigma on the mean, 4 on the variance (~2.2 % each)
    assert abs(v.mean() - mean) < 5 * np.sqrt(var / 4000)
    assert abs(v.var() / var - 1) < 0.09
    if N * p < 5:
        assert np.array_equal(v, np.round(v))   # exact integer counts
    assert not np.array_equal(v, on_device(backend, poisson_input, N, rate_hz) + 1)
    assert np.array_equal(v, on_device(backend, poisson_input, N, rate_hz))  # seed()


# -- seed() counts where it stands in the script ---------------------------------

def reseeded_settings():
    G = NeuronGroup(1000, "v1 : 1\nv2 : 1\nv3 : 1\nv4 : 1")
    seed(1)
    G.v1 = "rand()"
    seed(1)
    G.v2 = "rand()"
    G.v3 = "rand()"              # no seed in between: new numbers
    seed(2)
    G.v4 = "rand()"
    return {k: getattr(G, k)[:].copy() for k in ("v1", "v2", "v3", "v4")}


def test_seed_between_value_settings(backend):
    r = on_device(backend, reseeded_settings)
    assert np.array_equal(r["v1"], r["v2"])
    assert not np.array_equal(r["v2"], r["v3"])
    assert not np.array_equal(r["v1"], r["v4"])
    assert np.var(r["v1"]) > 0.05


def settings_before_and_after_seed(before):
    G = NeuronGroup(500, "u : 1\nw : 1")
    if before:
        G.u = "rand()"           # queued before the seed: drawn before it
    seed(7)
    G.w = "rand()"
    return G.w[:].copy()


def test_seed_takes_effect_where_it_stands(backend):
    assert np.array_equal(on_device(backend, settings_before_and_after_seed, True),
                          on_device(backend, settings_before_and_after_seed, False))


def fixed_and_random_between_runs():
    # Brian2's test_random_values_fixed_and_random, as one script
    G = NeuronGroup(10, "dv/dt = -v/(10*ms) + 0.1*xi/sqrt(ms) : 1", method="euler")
    from brian2 import StateMonitor, defaultclock
    mon = StateMonitor(G, "v", record=True)
    seed(13579)
    G.v = "rand()"
    seed()
    run(2 * defaultclock.dt)
    seed(13579)
    G.v = "rand()"
    seed()
    run(2 * defaultclock.dt)
    return mon.v[:].copy()


def test_fixed_and_random_seeds_between_runs(backend):
    v = on_device(backend, fixed_and_random_between_runs)
    first, second = v[:, [0, 1]], v[:, [2, 3]]
    assert np.array_equal(first[:, 0], second[:, 0])          # same seed
    assert np.all(np.abs((first[:, 1] - first[:, 0])
                         - (second[:, 1] - second[:, 0])) > 1e-6)   # random seed


def repeated_seeded_runs():
    from brian2 import Network, StateMonitor
    G = NeuronGroup(200, "dv/dt = -v/(10*ms) + 0.5*xi/sqrt(ms) : 1", method="euler")
    net = Network(G)
    net.store()
    out = []
    for s in (5, 5, 6):
        net.restore()
        seed(s)
        net.run(1 * ms)
        out.append(G.v[:].copy())
    return np.array(out)


def test_fixed_seed_runs_repeat(backend):
    """The same run from the same state after the same seed draws the same
    numbers (restore() does not restore the random state here)."""
    a = on_device(backend, repeated_seeded_runs)
    assert np.array_equal(a[0], a[1])
    assert not np.array_equal(a[0], a[2])
    b = on_device(backend, repeated_seeded_runs)     # and in a new session
    assert np.array_equal(a, b)
