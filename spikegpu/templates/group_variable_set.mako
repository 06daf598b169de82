## Brian2: setting a variable with a string expression at given indices
## (G.v[idx] = 'expr').
## USES_VARIABLES { _group_idx }
<%namespace file="common.mako" import="*"/>
${signature(c, 'run')}
{
    ${prologue(c)}
    const int64_t _vectorisation_idx = -1;
    ${rng(c, '0xFFFFFFFFu')}
    ${code(c.scalar_code)}
    ${elements(c, c.sizes['_group_idx'])}
    {
        const int64_t _idx_group_idx = _idx;
        {
        const int64_t _idx = ${c.ptr('_group_idx')}[_idx_group_idx];
        const int64_t _vectorisation_idx = _idx;
        ${rng(c, '_idx')}
        ${code(c.vector_code)}
        }
    }
}
