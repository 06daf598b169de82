## Brian2 object: Resetter (NeuronGroup reset=...).  Threads stride over the
## events of this step; the count lives on the device (eventspace[N]).
## USES_VARIABLES { N }
<%namespace file="common.mako" import="*"/>
${signature(c, 'run')}
{
    ${prologue(c)}
    const int32_t _num_events = ${c.eventspace}[${c.eventspace_n}];
    const int64_t _vectorisation_idx = -1;
    ${rng(c, '0xFFFFFFFFu')}
    ${code(c.scalar_code)}
%if c.serial:
    if (SG_GID != 0) return;
    for (int64_t _k = 0; _k < _num_events; _k++)
%else:
    for (int64_t _k = SG_GID; _k < _num_events; _k += SG_GSIZE)
%endif
    {
        const int64_t _idx = ${c.eventspace}[_k];
        const int64_t _vectorisation_idx = _idx;
        ${rng(c, '_idx')}
        ${code(c.vector_code)}
    }
}
