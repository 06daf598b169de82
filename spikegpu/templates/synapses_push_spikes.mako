## Brian2 object: a SynapticPathway's spike queue (push step).  For each
## event of the source, its synapses (sorted by delay, see
## spikegpu/synqueue.py) are appended to the queue slot 'now + delay'.  One
## work-group per event, threads over the synapses of its row.
## USES_VARIABLES { _n_sources, _n_targets, _source_dt }
<%namespace file="common.mako" import="*"/>
${signature(c, 'run')}
{
    const int32_t _nspikes = ${c.eventspace}[${c.eventspace_n}];
    const int32_t _head = ${c.ptr('_sg_qhead')}[0];
    for (int32_t _s = SG_GROUP; _s < _nspikes; _s += SG_NGROUPS) {
        const int32_t _src = ${c.eventspace}[_s];
        if (_src < ${c.kw['_sg_start']} || _src >= ${c.kw['_sg_stop']}) continue;
        const int32_t _end = ${c.ptr('_sg_rowstart')}[_src + 1];
        for (int32_t _k = ${c.ptr('_sg_rowstart')}[_src] + SG_LID; _k < _end; _k += SG_LSIZE) {
            const int32_t _slot = (_head + ${c.ptr('_sg_rowdelay')}[_k]) % ${c.kw['_sg_Q']};
            const int32_t _pos = sg_atomic_add_int(&${c.ptr('_sg_qcount')}[_slot], 1);
            ${c.ptr('_sg_queue')}[(int64_t)_slot * ${c.kw['_sg_cap']} + _pos] = ${c.ptr('_sg_rowsyn')}[_k];
        }
    }
}
