"""From Brian2's abstract code to a `GPUCodeObject`: translate the
statements (`generator.py`), add the arrays some templates need, render the
template of the code object's kind (`templates/<name>.mako`) and record
what the launcher needs.  Compilation happens later, in batches
(`programs.py`)."""
import numpy as np
from brian2.core.preferences import prefs
from brian2.core.variables import ArrayVariable, Constant
from brian2.utils.logger import get_logger
from brian2.utils.stringtools import get_identifiers

from .codeobject import (LAUNCHES, RenderContext, array_params, constant_lines,
                         kernel_entry_points, kernel_param_list, literal)

logger = get_logger("spikegpu.codegen")


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

    if template_name == "synapses":
        # the pathway's propagation (synqueue.py), prepared for every run
        from .synqueue import prepare_queue
        pathway = kw["pathway"]
        queue = prepare_queue(device, pathway, serial=generator.scalar_writes)
        evar = pathway.source.variables[pathway.eventspace_name]
        variables = dict(variables)
        variables.update(queue.variables)
        variables["_sg_eventspace"] = evar
        kw.update(queue.template_kwds(serial=generator.scalar_writes))

    params = array_params(variables)
    code_text = _flat(scalar_code) + "\n" + _flat(vector_code)
    used = get_identifiers(code_text) | {"N"}
    tvars = {}
    sizes = {}
    for vname, var in variables.items():
        if isinstance(var, ArrayVariable):
            p = generator.get_array_name(var)
            tvars[vname] = p + "[0]" if var.scalar else p
            sizes[vname] = var.size if not isinstance(var.size, tuple) else var.size[0]
        elif isinstance(var, Constant):
            tvars[vname] = literal(var.value)
    ctx = RenderContext(
        kname="KNAME", param_list=kernel_param_list(params),
        constants=constant_lines(variables, used), vars=tvars, sizes=sizes,
        variables=variables, kw=kw, scalar_code=scalar_code, locals=template.locals,
        vector_code=vector_code, serial=generator.scalar_writes,
        # (also functions defined through #define, e.g. binomial draws)
        uses_rng=(any(f in code_text + "\n".join(gen_kwds["hashdefine_lines"])
                      for f in ("_sg_rand", "_sg_randn", "_sg_poisson_fn", "_sg_rng"))
                  or kw.get("iterator_func") == "sample"),
        eventspace=generator.get_array_name(evar) if evar is not None else None,
        eventspace_n=(evar.size - 1) if evar is not None else None)
    if ctx.serial:
        logger.debug(f"{name}: writes shared or pre/post variables in an "
                     "order-dependent way, runs serially")
    source = template.render(c=ctx)
    codeobj = codeobj_class(owner, source, variables, variable_indices,
                            template_name=template_name,
                            template_source=template.template_source, name=name,
                            compiler_kwds=compiler_kwds)
    codeobj.support_code = "\n".join(gen_kwds["support_code_lines"])
    codeobj.hashdefines = "\n".join(gen_kwds["hashdefine_lines"])
    codeobj.params = params
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
