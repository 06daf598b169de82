"""Implementations of Brian2's functions for spikegpu kernels.

Registered under the generator's class name 'spikegpu', so both code-object
classes (CUDA, OpenCL) find them.  Math functions keep their C names (the
renderer casts integer arguments); the rest map to helpers in
templates/prelude.mako.  rand/randn/poisson draw from the counter-based
Philox stream of the element (templates/rng.c), as do the binomial draws
of PoissonInput (BinomialFunction).

Where Brian2 looks a function up for a spikegpu code object it tries, in
this order: an implementation for the code object's class name
('spikegpu_cuda' or 'spikegpu_opencl'), for 'spikegpu' (the generator),
then for 'cpp' (`GPUCodeObject.original_generator_class`, set below).  So a
user function with only a C++ implementation (``@implementation('cpp',
...)``) is compiled as it is, as CUDA C++ (its top-level functions made
``__host__ __device__``) and as OpenCL C; when it does not build, the
error names the function (see `cpp_fallbacks`).  Registrations keyed by
other packages' targets (Brian2CUDA's 'cuda', its code objects) do not
take these away: every lookup is keyed by spikegpu's own names."""
import re

from brian2.codegen.generators.cpp_generator import CPPCodeGenerator
from brian2.core.functions import DEFAULT_FUNCTIONS, Function
from brian2.input.binomial import BinomialFunction
from brian2.input.timedarray import TimedArray, _find_K

from .codeobject import GPUCodeObject
from .generator import GPUCodeGenerator

TARGET = GPUCodeGenerator

#: the last place Brian2's FunctionImplementationContainer looks for an
#: implementation of a spikegpu code object (after 'spikegpu_<backend>' and
#: 'spikegpu'): 'cpp', the C++ code users write for cpp_standalone
GPUCodeObject.original_generator_class = CPPCodeGenerator

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


def ensure_numpy_implementations(variables):
    """Give every function among ``variables`` (and their dependencies) a
    numpy implementation where it has none, from its Python function, as
    Brian2's ``create_runner_codeobj`` does for numpy code objects (values
    spikegpu evaluates on the host, e.g. a subexpression that calls
    ``exprel``).  Registered implementations, ours included, are untouched."""
    from brian2.codegen.runtime.numpy_rt import NumpyCodeObject
    from brian2.core.functions import Function
    todo = [v for v in variables.values() if isinstance(v, Function)]
    seen = set()
    while todo:
        func = todo.pop()
        if id(func) in seen:
            continue
        seen.add(id(func))
        try:
            impl = func.implementations[NumpyCodeObject]
        except KeyError:
            func.implementations.add_numpy_implementation(func.pyfunc)
            impl = func.implementations[NumpyCodeObject]
        todo.extend((impl.dependencies or {}).values())


def _is_cpp(func, impl):
    """Whether ``impl`` (what Brian2 found for a spikegpu code object) is
    ``func``'s C++ implementation."""
    for key, value in func.implementations._implementations.items():
        if value is impl:
            return getattr(key, "class_name", key) == "cpp" or key is CPPCodeGenerator
    return False


def cpp_fallbacks(variables, codeobj_class, owner):
    """{name: C++ support code} of the functions among ``variables``
    (dependencies included) that a ``codeobj_class`` code object uses
    through their C++ implementation (they have none for spikegpu)."""
    out = {}
    todo = [(name, v) for name, v in variables.items() if isinstance(v, Function)]
    seen = set()
    while todo:
        name, func = todo.pop()
        if id(func) in seen:
            continue
        seen.add(id(func))
        try:
            impl = func.implementations[codeobj_class]
        except KeyError:
            continue
        if _is_cpp(func, impl):
            code = impl.get_code(owner)
            if isinstance(code, dict):
                code = code.get("support_code", "")
            out[name] = code or ""
        todo.extend((impl.dependencies or {}).items())
    return out


_DEVICE_QUALIFIED = re.compile(r"\b(__device__|__global__|SG_FN|SG_KERNEL)\b")


def cuda_device_functions(code):
    """C++ support code with every top-level function definition that has
    no CUDA qualifier made ``__host__ __device__`` (a kernel can only call
    device functions; C++ written for cpp_standalone has none).  Function
    templates get the qualifier after their parameter list."""
    out = []
    depth = 0
    head_start = 0          # where the current top-level declaration begins
    i, n = 0, len(code)
    while i < n:
        ch = code[i]
        if ch == "#" and not code[code.rfind("\n", 0, i) + 1:i].strip():
            j = code.find("\n", i)      # a preprocessor line
            j = n if j < 0 else j
            while j < n and code[j - 1] == "\\":
                k = code.find("\n", j + 1)
                j = n if k < 0 else k
            i = head_start = j
            continue
        if ch in "\"'":                    # string or character literal
            j = i + 1
            while j < n and code[j] != ch:
                j += 2 if code[j] == "\\" else 1
            i = j + 1
            continue
        if code.startswith("//", i):
            j = code.find("\n", i)
            i = n if j < 0 else j
            continue
        if code.startswith("/*", i):
            j = code.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        if ch == "{":
            if depth == 0:
                head = code[head_start:i]
                if head.rstrip().endswith(")") and not _DEVICE_QUALIFIED.search(head):
                    stripped = head.lstrip()
                    at = head_start + len(head) - len(stripped)
                    m = re.match(r"template\s*<", stripped)
                    if m:       # after the template's parameter list
                        level, k = 0, at + m.end() - 1
                        while k < i:
                            level += {"<": 1, ">": -1}.get(code[k], 0)
                            k += 1
                            if level == 0:
                                break
                        at = k
                    out.append((at, "__host__ __device__ "))
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                head_start = i + 1
        elif ch == ";" and depth == 0:
            head_start = i + 1
        i += 1
    for at, text in reversed(out):
        code = code[:at] + text + code[at:]
    return code
