## Brian2 object: SummedVariableUpdater ('x_post = expr : 1 (summed)',
## gap junctions).  Zero the target range, then every synapse adds its value
## with an atomic add (many synapses share a target).
## USES_VARIABLES { N }
<%namespace file="common.mako" import="*"/>
<%
    target = c.array(c.kw['_target_var'])
    index = c.array(c.kw['_index_var'])
    ctype = c.ctype(c.kw['_target_var'])
    atomic = {'double': 'sg_atomic_add_double', 'float': 'sg_atomic_add_float',
              'int32_t': 'sg_atomic_add_int', 'int64_t': c.kname + '_atomic_add_i64'}[ctype]
%>
%if ctype == 'int64_t':
## a 64-bit integer target (one helper per kernel: its name carries the kernel's)
SG_FN void ${c.kname}_atomic_add_i64(SG_GLOBAL int64_t *p, const int64_t v) {
#ifdef __OPENCL_VERSION__
    atom_add(p, v);
#else
    atomicAdd((unsigned long long *)p, (unsigned long long)v);
#endif
}
%endif
${signature(c, 'zero')}
{
    ${prologue(c)}
    const int64_t _target_size = ${c.vars[c.kw['_target_size_name']]};
    for (int64_t _t = SG_GID; _t < _target_size; _t += SG_GSIZE)
        ${target}[_t + ${c.num('_target_start')}] = 0;
}

${signature(c, 'run')}
{
    ${prologue(c)}
    const int64_t _N = ${c.vars['N']};
    const int64_t _vectorisation_idx = -1;
    ${rng(c, '0xFFFFFFFFu')}
    ${code(c.scalar_code)}
    ${elements(c, '_N')}
    {
        const int64_t _vectorisation_idx = _idx;
        ${rng(c, '_idx')}
        ${code(c.vector_code)}
        ${atomic}(&${target}[${index}[_idx]], (${ctype})_synaptic_var);
    }
}
