## Brian2: Synapses.connect(i=..., j=...): one thread per given pair.  The
## host has grown the synaptic arrays; _sg_capacity carries the old count.
## USES_VARIABLES { _synaptic_pre, _synaptic_post, sources, targets, N_incoming, N_outgoing, N, N_pre, N_post, _source_offset, _target_offset }
## WRITES_TO_READ_ONLY_VARIABLES { _synaptic_pre, _synaptic_post, N_incoming, N_outgoing, N }
<%namespace file="common.mako" import="*"/>
${signature(c, 'fill')}
{
    ${prologue(c)}
    for (int64_t _idx = SG_GID; _idx < ${c.sizes['sources']}; _idx += SG_GSIZE) {
        const int64_t _vectorisation_idx = _idx;
        ${code(c.vector_code)}
        ${c.ptr('_synaptic_pre')}[_sg_capacity + _idx] = _real_sources;
        ${c.ptr('_synaptic_post')}[_sg_capacity + _idx] = _real_targets;
        sg_atomic_add_int(&${c.ptr('N_outgoing')}[_real_sources], 1);
        sg_atomic_add_int(&${c.ptr('N_incoming')}[_real_targets], 1);
    }
}
