## Brian2 object: PopulationRateMonitor.  Counts this step's spikes in the
## source range (the eventspace is sorted) and appends rate and t.
## USES_VARIABLES { N, rate, t, _spikespace, _clock_t, _clock_dt, _num_source_neurons, _source_start, _source_stop }
## WRITES_TO_READ_ONLY_VARIABLES { N }
<%namespace file="common.mako" import="*"/>
${signature(c, 'run')}
{
    ${prologue(c)}
    if (SG_GID != 0) return;
    const int32_t _row = ${c.vars['N']};
    if (_row >= _sg_capacity) return;
    const int32_t _num = ${c.ptr('_spikespace')}[${c.sizes['_spikespace']} - 1];
    int32_t lo = 0, hi = _num;
    while (lo < hi) { int32_t m = (lo + hi) / 2; if (${c.ptr('_spikespace')}[m] < ${c.vars['_source_start']}) lo = m + 1; else hi = m; }
    const int32_t _start = lo;
    hi = _num;
    while (lo < hi) { int32_t m = (lo + hi) / 2; if (${c.ptr('_spikespace')}[m] < ${c.vars['_source_stop']}) lo = m + 1; else hi = m; }
    ${c.ptr('rate')}[_row] = 1.0 * (lo - _start) / ${c.vars['_clock_dt']} / ${c.vars['_num_source_neurons']};
    ${c.ptr('t')}[_row] = ${c.vars['_clock_t']};
    ${c.vars['N']} = _row + 1;
}
