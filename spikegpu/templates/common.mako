## Shared pieces of every kernel.  ``c`` is the code object's render context
## (see spikegpu/codeobject.py): c.kname, c.params, c.constants, c.vars, ...
## A kernel is written as a body function; codeobject.kernel_entry_points adds the
## kernel that calls it, and the fused step kernel calls several bodies.
<%def name="signature(c, block)">SG_FN void ${c.kname}_${block}_body(${c.param_list}${''.join(' SG_LOCAL_PARAM(%s, %s)' % (t, n) for t, n, _ in c.locals.get(block, []))})</%def>
## work-group memory a body declares with '## LOCAL <block>: <type> <name>[<n>]'
<%def name="shared(c, block)">
%for t, n, size in c.locals.get(block, []):
    SG_SHARED(${t}, ${n}, ${size});
%endfor
</%def>
<%def name="prologue(c)">
%for line in c.constants:
    ${line}
%endfor
</%def>
<%def name="rng(c, idx)">
%if c.uses_rng:
    _sg_rng_t _sg_rng = _sg_rng_make(_sg_seed[0], _sg_seed[1], (uint32_t)(${idx}), (uint32_t)_sg_step[0], _sg_stream);
%endif
</%def>
<%def name="code(lines)">
%for line in (lines.split('\n') if isinstance(lines, str) else lines):
    ${line}
%endfor
</%def>
## Loop over [0, n): every thread of the grid, or one thread when the code
## must run serially (scalar writes, order-dependent updates).
<%def name="elements(c, n)">
%if c.serial:
    if (SG_GID != 0) return;
    for (int64_t _idx = 0; _idx < (${n}); _idx++)
%else:
    for (int64_t _idx = SG_GID; _idx < (${n}); _idx += SG_GSIZE)
%endif
</%def>
