"""Implementations of Brian2's functions for spikegpu kernels.

Registered under the generator's class name 'spikegpu', so both code-object
classes (CUDA, OpenCL) find them.  Math functions keep their C names (the
renderer casts integer arguments); the rest map to helpers in
templates/prelude.mako.  rand/randn/poisson draw from the counter-based
Philox stream of the element (templates/rng.c), as do the binomial draws
of PoissonInput (BinomialFunction)."""
from brian2.core.functions import DEFAULT_FUNCTIONS
from brian2.input.binomial import BinomialFunction
from brian2.input.timedarray import TimedArray, _find_K

from .generator import GPUCodeGenerator

TARGET = GPUCodeGenerator

_SAME_NAME = ["cos", "sin", "tan", "cosh", "sinh", "tanh", "exp", "log", "log10",
              "expm1", "log1p", "sqrt", "ceil", "floor", "abs", "sign", "clip", "int"]
_RENAMED = {"arccos": "acos", "arcsin": "asin", "arctan": "atan",
            "exprel": "_sg_exprel", "timestep": "_sg_timestep",
            "rand": "_sg_rand", "randn": "_sg_randn", "poisson": "_sg_poisson_fn"}

for _name in _SAME_NAME:
    DEFAULT_FUNCTIONS[_name].implementations.add_implementation(TARGET, code=None)
for _name, _cname in _RENAMED.items():
    DEFAULT_FUNCTIONS[_name].implementations.add_implementation(TARGET, code=None,
                                                                name=_cname)


def _timedarray_1d(values, dt, name):
    def impl(owner):
        K = _find_K(owner.clock.dt_, dt)
        return {"hashdefine_code":
                f"#undef {name}\n#define {name}(_t) _sg_timedarray_1d("
                f"_ptr_array_temporary_{name}_values, {len(values)}, {dt!r}, {K}, (_t))"}
    return impl


def _timedarray_2d(values, dt, name):
    def impl(owner):
        K = _find_K(owner.clock.dt_, dt)
        rows, cols = values.shape
        return {"hashdefine_code":
                f"#undef {name}\n#define {name}(_t, _i) _sg_timedarray_2d("
                f"_ptr_array_temporary_{name}_values, {rows}, {cols}, {dt!r}, {K}, (_t), (_i))"}
    return impl


TimedArray.implementations[TARGET] = (_timedarray_1d, _timedarray_2d)


def _binomial(n, p, use_normal, name):
    """PoissonInput's binomial draws: Brian2's algorithms (normal
    approximation, or inversion as numpy's rk_binomial_inversion) on the
    element's Philox stream (`_sg_rng` of the kernel), in the prelude
    (`_sg_binomial_*`).  The numbers in the #define become fields
    (codegen.canonical), so PoissonInputs of other sizes and rates share
    one kernel."""
    from brian2.input.binomial import (_pre_calc_constants,
                                       _pre_calc_constants_approximated)
    if use_normal:
        loc, scale = (float(x) for x in _pre_calc_constants_approximated(n, p))
        call = f"_sg_binomial_normal(&_sg_rng, {loc!r}, {scale!r})"
    else:
        reverse, q, P, qn, bound = _pre_calc_constants(n, p)
        call = (f"_sg_binomial_inversion(&_sg_rng, {int(n)}, {float(P)!r}, {float(q)!r}, "
                f"{float(qn)!r}, {float(bound)!r}, {1 if reverse else 0})")
    return {"hashdefine_code": f"#undef {name}\n#define {name}(_vidx) {call}"}, {}


BinomialFunction.implementations[TARGET] = _binomial
