## Brian2 objects: SpikeMonitor and EventMonitor.  One work-group appends
## the events of this step that fall into the source range; the host keeps
## the buffers large enough (see spikegpu/monitors.py).
## USES_VARIABLES { N, _clock_t, count, _source_start, _source_stop }
## LOCAL run: int32_t _sg_range[2]
## WRITES_TO_READ_ONLY_VARIABLES { N, count }
<%namespace file="common.mako" import="*"/>
${signature(c, 'run')}
{
    ${prologue(c)}
    ${shared(c, 'run')}
    const int32_t _num_events = ${c.eventspace}[${c.eventspace_n}];
    const int32_t _base = ${c.vars['N']};
    if (SG_LID == 0) {
        ## events are sorted: binary search for the source range
        int32_t lo = 0, hi = _num_events;
        while (lo < hi) { int32_t m = (lo + hi) / 2; if (${c.eventspace}[m] < ${c.vars['_source_start']}) lo = m + 1; else hi = m; }
        _sg_range[0] = lo;
        hi = _num_events;
        while (lo < hi) { int32_t m = (lo + hi) / 2; if (${c.eventspace}[m] < ${c.vars['_source_stop']}) lo = m + 1; else hi = m; }
        _sg_range[1] = lo;
    }
    SG_BARRIER_LOCAL();
    const int32_t _start = _sg_range[0], _stop = _sg_range[1];
    ## every thread has read the count (before the barrier above)
    if (SG_LID == 0) ${c.vars['N']} = _base + (_stop - _start);
    const int64_t _vectorisation_idx = -1;
    ${rng(c, '0xFFFFFFFFu')}
    ${code(c.scalar_code)}
    for (int32_t _j = _start + SG_LID; _j < _stop; _j += SG_LSIZE) {
        const int64_t _idx = ${c.eventspace}[_j];
        const int64_t _vectorisation_idx = _idx;
        ${rng(c, '_idx')}
        ${code(c.vector_code)}
        const int64_t _pos = (int64_t)_base + (_j - _start);
        if (_pos < _sg_capacity) {
%for varname, var in sorted(c.kw['record_variables'].items()):
            ${c.array(var)}[_pos] = _to_record_${varname};
%endfor
        }
        ${c.ptr('count')}[_idx - ${c.vars['_source_start']}] += 1;
    }
}
