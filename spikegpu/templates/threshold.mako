## Brian2 object: Thresholder (NeuronGroup threshold=..., custom events).
## One work-group evaluates the condition chunk by chunk and compacts the
## indices with a prefix sum, so the eventspace holds the events in
## ascending order (as Brian2 does) and its count at eventspace[N].
## USES_VARIABLES { N }
<%namespace file="common.mako" import="*"/>
${signature(c, 'run')}
{
    ${prologue(c)}
    SG_LOCAL int32_t _sg_scan[SG_WG];
    SG_LOCAL int32_t _sg_base;
    const int64_t _N = ${c.eventspace_n};
    if (SG_LID == 0) _sg_base = 0;
    SG_BARRIER();
    const int64_t _vectorisation_idx = -1;
    ${rng(c, '0xFFFFFFFFu')}
    ${code(c.scalar_code)}
    for (int64_t _chunk = 0; _chunk < _N; _chunk += SG_LSIZE) {
        const int64_t _idx = _chunk + SG_LID;
        int32_t _flag = 0;
        if (_idx < _N) {
            const int64_t _vectorisation_idx = _idx;
            ${rng(c, '_idx')}
            ${code(c.vector_code)}
            _flag = _cond ? 1 : 0;
        }
        _sg_scan[SG_LID] = _flag;
        SG_BARRIER();
        for (int _off = 1; _off < SG_LSIZE; _off <<= 1) {
            const int32_t _v = SG_LID >= _off ? _sg_scan[SG_LID - _off] : 0;
            SG_BARRIER();
            _sg_scan[SG_LID] += _v;
            SG_BARRIER();
        }
        if (_flag) {
            ${c.eventspace}[_sg_base + _sg_scan[SG_LID] - 1] = (int32_t)_idx;
%if c.kw.get('_uses_refractory'):
            ${c.vars['not_refractory'].replace('[0]', '')}[_idx] = 0;
            ${c.vars['lastspike'].replace('[0]', '')}[_idx] = ${c.vars['t']};
%endif
        }
        SG_BARRIER();
        if (SG_LID == SG_LSIZE - 1) _sg_base += _sg_scan[SG_LID];
        SG_BARRIER();
    }
    if (SG_LID == 0) ${c.eventspace}[_N] = _sg_base;
}

${signature(c, 'after_run')}
{
    if (SG_GID == 0) ${c.eventspace}[${c.eventspace_n}] = 0;
}
