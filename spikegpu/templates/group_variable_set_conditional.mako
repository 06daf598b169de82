## Brian2: setting a variable with a string expression under a condition
## (G.v = 'expr', G.v['i > 5'] = 'expr').
## USES_VARIABLES { N }
<%namespace file="common.mako" import="*"/>
${signature(c, 'run')}
{
    ${prologue(c)}
    const int64_t _N = ${c.vars['N']};
    const int64_t _vectorisation_idx = -1;
    ${rng(c, '0xFFFFFFFFu')}
    ${code(c.scalar_code['condition'])}
    ${code(c.scalar_code['statement'])}
    ${elements(c, '_N')}
    {
        const int64_t _vectorisation_idx = _idx;
        ${rng(c, '_idx')}
        ${code(c.vector_code['condition'])}
        if (_cond) {
            ${code(c.vector_code['statement'])}
        }
    }
}
