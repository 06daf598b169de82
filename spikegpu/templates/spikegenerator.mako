## Brian2 object: SpikeGeneratorGroup.  One thread emits the spikes of the
## current time bin (the spike arrays are sorted by time bin).
## USES_VARIABLES { _spikespace, neuron_index, _timebins, _period_bins, _lastindex, t_in_timesteps, N }
<%namespace file="common.mako" import="*"/>
${signature(c, 'run')}
{
    ${prologue(c)}
    if (SG_GID != 0) return;
    const int32_t _the_period = ${c.vars['_period_bins']};
    int32_t _timebin = ${c.vars['t_in_timesteps']};
    if (_the_period > 0) {
        _timebin %= _the_period;
        if (${c.vars['_lastindex']} > 0 && ${c.ptr('_timebins')}[${c.vars['_lastindex']} - 1] >= _timebin)
            ${c.vars['_lastindex']} = 0;
    }
    int32_t _n = 0;
    for (int64_t _idx = ${c.vars['_lastindex']}; _idx < ${c.sizes['_timebins']}; _idx++) {
        if (${c.ptr('_timebins')}[_idx] > _timebin) break;
        ${c.ptr('_spikespace')}[_n++] = ${c.ptr('neuron_index')}[_idx];
    }
    ${c.ptr('_spikespace')}[${c.sizes['_spikespace']} - 1] = _n;
    ${c.vars['_lastindex']} += _n;
}
