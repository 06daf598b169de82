"""Functions: user-defined functions with only a C++ implementation (tried
as they are), spikegpu implementations, the default functions' numpy
implementations for values evaluated on the host, and implementations that
another device package (Brian2CUDA) registers in the same process."""
import numpy as np
import pytest
from brian2 import (Function, NeuronGroup, PoissonInput, StateMonitor, TimedArray,
                    check_units, defaultclock, implementation, ms, run, seed)
from brian2.codegen.codeobject import CodeObject
from brian2.codegen.generators.base import CodeGenerator
from brian2.core.functions import DEFAULT_FUNCTIONS
from brian2.input.binomial import BinomialFunction

from conftest import compare, on_device, own
from spikegpu.backends import KernelBuildError
from spikegpu.codeobject import CUDACodeObject, OpenCLCodeObject
from spikegpu.functions import cpp_fallbacks, cuda_device_functions


@implementation("cpp", """
    inline double usersin(double x)
    {
        return sin(x);
    }
    """)
@check_units(x=1, result=1)
def usersin(x):
    return np.sin(x)


@implementation("cpp", """
    #include <vector>
    inline double needs_cpp(double x)
    {
        std::vector<double> v(3, x);
        return v[1];
    }
    """)
@check_units(x=1, result=1)
def needs_cpp(x):
    return x


# both: the spikegpu implementation wins (the C++ one would add 1000)
@implementation("cpp", "inline double twice(double x) { return 2*x + 1000; }")
@implementation("spikegpu", "SG_FN double twice(double x) { return 2*x; }")
@check_units(x=1, result=1)
def twice(x):
    return 2 * x


def user_function_script():
    G = NeuronGroup(4, """func = usersin(variable) : 1
                          dw/dt = twice(variable)/ms : 1
                          variable : 1""", method="euler")
    G.variable = np.arange(4)
    mon = StateMonitor(G, "func", record=True)
    run(3 * defaultclock.dt)
    return own(func=mon.func[:], w=G.w[:])


def test_cpp_only_function_is_compiled_as_it_is(backend):
    ref = compare(backend, user_function_script)
    assert np.allclose(ref["func"][:, 0], np.sin(np.arange(4)))
    assert np.allclose(ref["w"], 3 * 0.1 * 2 * np.arange(4))


def test_cpp_function_that_does_not_build_is_named(backend):
    def script():
        G = NeuronGroup(3, "dv/dt = needs_cpp(v)/ms : 1", method="euler")
        run(1 * ms)

    with pytest.raises(KernelBuildError) as exc:
        on_device(backend, script)
    msg = str(exc.value)
    assert "Function 'needs_cpp' has no spikegpu implementation" in msg
    assert "@implementation('spikegpu'" in msg
    assert "vector" in msg            # the compiler's complaint is quoted


def test_cpp_fallbacks_are_found_only_without_a_spikegpu_implementation():
    variables = {"usersin": usersin, "twice": twice, "sin": DEFAULT_FUNCTIONS["sin"],
                 "exp": DEFAULT_FUNCTIONS["exp"]}
    for cls in (CUDACodeObject, OpenCLCodeObject):
        found = cpp_fallbacks(variables, cls, owner=None)
        assert sorted(found) == ["usersin"]
        assert "return sin(x);" in found["usersin"]


def test_cuda_device_functions():
    code = cuda_device_functions(
        "inline double f(double x)\n{ if (x) { return 1; } return x; } // {\n"
        "#define G(a) { a }\n"
        "template <typename T> T sq(T x) { return x*x; }\n"
        "static const double tab[] = {1, 2};\n"
        "struct S { int a; };\n"
        "SG_FN int g(int a) { return a; }\n"
        "__device__ int h(int a) { return a; }\n"
        "double k(const char *s = \"){\") { return 0; }\n")
    lines = code.split("\n")
    assert lines[0] == "__host__ __device__ inline double f(double x)"
    assert lines[1] == "{ if (x) { return 1; } return x; } // {"
    assert lines[2] == "#define G(a) { a }"
    assert lines[3].startswith("template <typename T>__host__ __device__  T sq(T x)")
    assert lines[4] == "static const double tab[] = {1, 2};"
    assert lines[5] == "struct S { int a; };"
    assert lines[6] == "SG_FN int g(int a) { return a; }"
    assert lines[7] == "__device__ int h(int a) { return a; }"
    assert lines[8].startswith("__host__ __device__ double k(")


def exprel_subexpression():
    G = NeuronGroup(5, """dv/dt = -v/(10*ms) : 1
                          alpha = 1/exprel(v) : 1
                          beta = v*exp(v) + clip(v, 0.1, 0.3) : 1""", method="exact")
    G.v = "i*0.3 - 0.4"
    run(1 * ms)
    # subexpressions read on the host (Brian2 evaluates them with numpy)
    return own(alpha=G.alpha[:], beta=G.beta[:], v=G.v[:])


def test_subexpression_with_exprel_read_on_the_host(backend):
    """Brian2's example advanced/exprel_function.py reads such a
    subexpression: the default functions keep their numpy implementations."""
    ref = compare(backend, exprel_subexpression)
    assert np.allclose(ref["alpha"], ref["v"] / np.expm1(ref["v"]))
    impls = DEFAULT_FUNCTIONS["exprel"].implementations
    from brian2.codegen.runtime.numpy_rt import NumpyCodeObject
    assert impls[NumpyCodeObject] is not None
    assert impls[OpenCLCodeObject].name == "_sg_exprel"


# -- another device package in the same process ------------------------------------

class _OtherGenerator(CodeGenerator):
    """What Brian2CUDA registers its implementations for: a generator named
    'cuda' and a code object class without a class name."""
    class_name = "cuda"


class _OtherCodeObject(CodeObject):
    generator_class = _OtherGenerator


def random_functions_script():
    seed(11)
    ta = TimedArray(np.array([0.0, 1.0, 3.0]), dt=0.2 * ms)
    G = NeuronGroup(50, """dv/dt = (ta(t) - v + 0.3*xi*sqrt(ms))/ms : 1
                           u : 1
                           k : integer""", method="euler")
    G.u = "rand() + randn()"
    G.k = "poisson(2.0)"
    P = PoissonInput(G, "v", 20, 100 * 1000 / ms / 1000, weight=0.01)  # noqa: F841
    run(0.6 * ms)
    return own(v=G.v[:], u=G.u[:], k=G.k[:],
               exprel=np.array([DEFAULT_FUNCTIONS["exprel"].implementations[
                   OpenCLCodeObject].name]))


def test_another_device_packages_implementations_leave_ours(backend):
    """Brian2CUDA adds 'cuda' implementations of rand, randn, poisson,
    exprel, timestep..., some keyed by its code object class, and TimedArray
    and BinomialFunction ones; spikegpu's stay (bitwise the same run)."""
    before = on_device(backend, random_functions_script)
    names = ["rand", "randn", "poisson", "exprel", "timestep", "sin", "exp", "clip"]
    added = []
    try:
        for name in names:
            impls = DEFAULT_FUNCTIONS[name].implementations
            for key in (_OtherGenerator, _OtherCodeObject):
                impls.add_implementation(key, code="#error not ours", name="_" + name)
                added.append((impls, key))
        TimedArray.implementations["cuda"] = TimedArray.implementations[
            list(TimedArray.implementations)[0]]
        BinomialFunction.implementations["cuda"] = lambda *a, **k: (
            {"support_code": "#error not ours"}, {})
        after = on_device(backend, random_functions_script)
    finally:
        for impls, key in added:
            del impls._implementations[key]
        TimedArray.implementations.pop("cuda", None)
        BinomialFunction.implementations.pop("cuda", None)
    for k in before:
        assert np.array_equal(before[k], after[k]), k
    assert np.var(before["u"]) > 0 and np.var(before["k"]) > 0
