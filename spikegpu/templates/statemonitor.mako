## Brian2 object: StateMonitor.  Rows (time) are preallocated on the host
## for the whole run; one work-group appends a row per step.
## USES_VARIABLES { t, _clock_t, _indices, N }
## WRITES_TO_READ_ONLY_VARIABLES { t, N }
<%namespace file="common.mako" import="*"/>
${signature(c, 'run')}
{
    ${prologue(c)}
    const int32_t _row = ${c.vars['N']};
    if (_row >= _sg_capacity) return;
    if (SG_LID == 0) ${c.ptr('t')}[_row] = ${c.vars['_clock_t']};
    const int64_t _vectorisation_idx = -1;
    ${rng(c, '0xFFFFFFFFu')}
    ${code(c.scalar_code)}
    for (int64_t _i = SG_LID; _i < ${c.sizes['_indices']}; _i += SG_LSIZE) {
        const int64_t _idx = ${c.ptr('_indices')}[_i];
        const int64_t _vectorisation_idx = _idx;
        ${rng(c, '_idx')}
        ${code(c.vector_code)}
%for varname, var in sorted(c.kw['_recorded_variables'].items()):
        ${c.array(var)}[(int64_t)_row * ${c.sizes['_indices']} + _i] = _to_record_${varname};
%endfor
    }
    SG_BARRIER();
    if (SG_LID == 0) ${c.vars['N']} = _row + 1;
}
