## Brian2 objects: NeuronGroup/Synapses state updaters, run_regularly,
## PoissonInput.  One thread per element.
## USES_VARIABLES { N }
## ALLOWS_SCALAR_WRITE
<%namespace file="common.mako" import="*"/>
${signature(c, 'run')}
{
    ${prologue(c)}
    const int64_t _N = ${c.vars['N']};
    {
    const int64_t _vectorisation_idx = -1;
    ${rng(c, '0xFFFFFFFFu')}
    ${code(c.scalar_code)}
    ${elements(c, '_N')}
    {
        const int64_t _vectorisation_idx = _idx;
        ${rng(c, '_idx')}
        ${code(c.vector_code)}
    }
    }
}
