"""From Brian2's abstract code to a `GPUCodeObject`: translate the
statements (`generator.py`), add the arrays some templates need, render the
template of the code object's kind (`templates/<name>.mako`) and record
what the launcher needs.  Compilation happens later, in batches
(`programs.py`)."""
import re

import numpy as np
from brian2.core.preferences import prefs
from brian2.core.variables import ArrayVariable, Constant
from brian2.utils.logger import get_logger
from brian2.utils.stringtools import get_identifiers

from .codeobject import (LAUNCHES, PARAMS_PLACEHOLDER, RenderContext, array_params,
                         body_param_list, kernel_entry_points)
from .generator import c_type

logger = get_logger("spikegpu.codegen")


#: names in generated code that draw random numbers
RNG_NAMES = ("_sg_rand", "_sg_randn", "_sg_poisson_fn", "_sg_rng")


def _flat(block):
    parts = block.values() if isinstance(block, dict) else [block]
    return "\n".join(p if isinstance(p, str) else "\n".join(p) for p in parts)


def create_code_object(device, owner, name, abstract_code, variables, template_name,
                       variable_indices, codeobj_class, template_kwds=None,
                       override_conditional_write=None, compiler_kwds=None):
    if template_name not in LAUNCHES:
        raise NotImplementedError(
            f"spikegpu: '{getattr(owner, 'name', owner)}' needs Brian2's "
            f"'{template_name}' code object, which gpu_standalone does not "
            "support yet")
    template = getattr(codeobj_class.templater, template_name)
    generator = codeobj_class.generator_class(
        variables=variables, variable_indices=variable_indices, owner=owner,
        iterate_all=template.iterate_all, codeobj_class=codeobj_class,
        override_conditional_write=override_conditional_write,
        allows_scalar_write=template.allows_scalar_write, name=name,
        template_name=template_name)
    kw = dict(template_kwds or {})
    scalar_code, vector_code, gen_kwds = generator.translate(
        abstract_code, dtype=prefs["core.default_float_dtype"])
    if len(scalar_code) == 1 and None in scalar_code:
        scalar_code = scalar_code[None]
        vector_code = vector_code[None]
    code_text = _flat(scalar_code) + "\n" + _flat(vector_code)
    # (also functions defined through #define, e.g. binomial draws)
    uses_rng = (any(f in code_text + "\n".join(gen_kwds["hashdefine_lines"])
                    for f in RNG_NAMES)
                or kw.get("iterator_func") == "sample")

    # function namespaces (e.g. TimedArray values) and scratch arrays of
    # some templates become kernel arguments
    extra = [(key, np.asarray(value).ravel()) for key, value in gen_kwds["function_namespace"]]
    if template_name == "synapses_create_generator":
        n_outer = device._scalar_value(variables[kw["outer_index_size"]])
        extra += [("_sg_counts", np.zeros(n_outer + 1, dtype=np.int64)),
                  ("_sg_error", np.zeros(4, dtype=np.int32))]
    evar = kw.get("eventspace_variable")
    if template_name == "threshold" and evar.size - 1 > 4 * device.backend.group_size:
        bsize = device.backend.group_size
        nblocks = (evar.size - 1 + bsize - 1) // bsize
        kw.update(_sg_multiblock=True, _sg_nblocks=nblocks, _sg_bsize=bsize)
        extra += [("_sg_tscratch", np.zeros(nblocks * bsize, dtype=np.int32)),
                  ("_sg_tcount", np.zeros(nblocks, dtype=np.int32))]
    for key, value in extra:
        if key not in variables:
            v = ArrayVariable(name=key, owner=None, size=value.size,
                              device=device, dtype=value.dtype, read_only=True)
            device.add_array(v)
            device.fill_with_array(v, value)
            device._namespace_arrays.append(v)
            variables = dict(variables)
            variables[key] = v

    if template_name == "spatialstateupdate":
        # a SpatialNeuron's morphology structure on the device (spatial.py)
        from .spatial import prepare_spatial
        variables = dict(variables)
        variables.update(prepare_spatial(device, owner, variables, kw, generator.accesses))

    if template_name == "synapses":
        # the pathway's propagation (synqueue.py), prepared for every run
        from .synqueue import prepare_queue
        pathway = kw["pathway"]
        queue = prepare_queue(device, pathway, serial=generator.scalar_writes,
                              additive=_additive(device, generator, variables, pathway,
                                                 gen_kwds, uses_rng))
        evar = pathway.source.variables[pathway.eventspace_name]
        variables = dict(variables)
        variables.update(queue.variables)
        variables["_sg_eventspace"] = evar
        kw.update(queue.template_kwds(serial=generator.scalar_writes))

    used = get_identifiers(code_text) | {"N"}
    ctx = RenderContext(
        kname="KNAME", constants=[],
        variables=variables, kw=kw, scalar_code=scalar_code, locals=template.locals,
        vector_code=vector_code, serial=generator.scalar_writes,
        uses_rng=uses_rng,
        eventspace=generator.get_array_name(evar) if evar is not None else None,
        eventspace_size=(evar.size - 1) if evar is not None else None)
    # fields: the code's float literals, the constants it uses, then what
    # the template registers while it renders
    for fname, ctype, value in generator.literals:
        ctx.fields.add(fname, ctype, value)
    for vname in sorted(used):
        if isinstance(variables.get(vname), Constant):
            ctx.constant(vname)
    if ctx.serial:
        logger.debug(f"{name}: writes shared or pre/post variables in an "
                     "order-dependent way, runs serially")
    source = template.render(c=ctx)
    hashdefines = "\n".join(gen_kwds["hashdefine_lines"])
    source, hashdefines, params = canonical(source, hashdefines, array_params(variables),
                                            ctx.fields)
    codeobj = codeobj_class(owner, source, variables, variable_indices,
                            template_name=template_name,
                            template_source=template.template_source, name=name,
                            compiler_kwds=compiler_kwds)
    codeobj.support_code = "\n".join(gen_kwds["support_code_lines"])
    codeobj.hashdefines = hashdefines
    codeobj.params = params
    codeobj.fields = ctx.fields
    codeobj.code_access = generator.accesses      # for the step plan
    codeobj.eventspace_var = evar
    codeobj.structure = set(queue.variables) if template_name == "synapses" else set()
    codeobj.serial = ctx.serial
    codeobj.extra = kw
    codeobj.ctx = ctx
    codeobj.kernel_source = source + "\n" + kernel_entry_points(codeobj)
    if ctx.uses_rng:
        # only code objects that draw random numbers take a stream, so that
        # the same code objects get the same streams after
        # restore(restore_random_state=True) (see randomstate.py)
        codeobj.stream_id = device.random.new_stream()
    return codeobj


def _additive(device, generator, variables, pathway, gen_kwds, uses_rng):
    """A `synqueue.Additive` when the pathway's code only adds synaptic
    constants to one post-synaptic variable (and draws no random numbers,
    not even in its functions' support code), else None."""
    from .synqueue import Additive
    if not device.dendritic or generator.additive is None or gen_kwds["function_namespace"]:
        return None
    if uses_rng or any(f in line for line in gen_kwds["support_code_lines"] for f in RNG_NAMES):
        return None
    x, reads = generator.additive
    var = variables[x]
    target = pathway.synapses.target
    lo = int(getattr(target, "start", 0))
    n = len(target)
    if lo + n > var.size:
        return None
    return Additive(generator.get_array_name(var), c_type(var.dtype),
                    generator._ATOMIC[np.dtype(var.dtype)], np.dtype(var.dtype), lo, n,
                    [(name, variables[name]) for name in reads])


def canonical(source, hashdefines, params, fields):
    """The code object's kernel text in a form that objects whose code is
    the same up to array names, macro names and numbers share: the arrays
    it uses become parameters ``_p0, _p1, ...`` (in order of first use),
    names its #defines introduce become ``_sg_d0, ...`` (a PoissonInput's
    binomial, a TimedArray), numbers in #define bodies become fields (the
    code's numbers are fields already).  Returns (source,
    hashdefines, [(parameter name, variable)])."""
    hashdefines = _define_fields(hashdefines, fields)
    text = hashdefines + "\n" + source
    # each name's first whole-word use: one pass over the text's words (a
    # pattern per name overflowed re's cache: ~0.3 s a run for 64 Synapses)
    at = {}
    for m in _WORD.finditer(text):
        at.setdefault(m.group(0), m.start())
    used = sorted(((at[pname], pname, var) for pname, var in dict(params).items()
                   if pname in at), key=lambda item: item[0])
    renames = {pname: f"_p{k}" for k, (_, pname, _) in enumerate(used)}
    for k, name in enumerate(dict.fromkeys(re.findall(r"#define\s+(\w+)", hashdefines))):
        renames[name] = f"_sg_d{k}"
    canon = [(renames[pname], var) for _, pname, var in used]
    source = source.replace(PARAMS_PLACEHOLDER, body_param_list(canon, fields))
    if renames:
        def rename(m):
            return renames.get(m.group(0), m.group(0))
        source = _WORD.sub(rename, source)
        hashdefines = _WORD.sub(rename, hashdefines)
    return source, hashdefines, canon


_WORD = re.compile(r"\w+")


_NUMBER = re.compile(r"(?<![\w.])(\d+\.\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|"
                     r"\d+[eE][+-]?\d+|\d+)(?![\w.])")
_DEFINE = re.compile(r"^(\s*#\s*define\s+\w+(?:\([^)]*\))?)(.*)$")


def _define_fields(hashdefines, fields):
    """Numbers in the bodies of #define lines become fields ``_sg_h<k>``
    (int64 or double, as written): macros expand inside the body, where the
    fields are parameters."""
    lines = []
    for line in hashdefines.split("\n"):
        m = _DEFINE.match(line)
        if m:
            def field(num):
                text = num.group(1)
                name = f"_sg_h{sum(1 for n, _, _ in fields if n.startswith('_sg_h'))}"
                if re.fullmatch(r"\d+", text):
                    return fields.add(name, "int64_t", int(text))
                return fields.add(name, "double", float(text))
            line = m.group(1) + _NUMBER.sub(field, m.group(2))
        lines.append(line)
    return "\n".join(lines)
