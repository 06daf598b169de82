## Brian2 object: a SynapticPathway (on_pre / on_post code).  Applies the
## code to the synapses in the current queue slot, then advances the queue.
## Pre/post variables changed by += / -= use atomic adds; other writes to
## them make the code run serially (generator.py decides).
## USES_VARIABLES { _synaptic_pre }
<%namespace file="common.mako" import="*"/>
${signature(c, 'run')}
{
    ${prologue(c)}
    const int32_t _head = ${c.ptr('_sg_qhead')}[0];
    const int32_t _n = ${c.ptr('_sg_qcount')}[_head];
    SG_GLOBAL const int32_t *_slot = ${c.ptr('_sg_queue')} + (int64_t)_head * ${c.kw['_sg_cap']};
    const int64_t _vectorisation_idx = -1;
    ${rng(c, '0xFFFFFFFFu')}
    ${code(c.scalar_code)}
    ${elements(c, '_n')}
    {
        const int64_t _sg_k = _idx;
        {
        const int64_t _idx = _slot[_sg_k];
        const int64_t _vectorisation_idx = _idx;
        ${rng(c, '_idx')}
        ${code(c.vector_code)}
        }
    }
}

${signature(c, 'advance')}
{
    if (SG_GID == 0) {
        const int32_t _head = ${c.ptr('_sg_qhead')}[0];
        ${c.ptr('_sg_qcount')}[_head] = 0;
        ${c.ptr('_sg_qhead')}[0] = (_head + 1) % ${c.kw['_sg_Q']};
    }
}
