## Brian2: Synapses.connect() with a condition, p= or a generator
## expression.  Runs on the device in two passes over the outer index (one
## thread each): 'count' counts the synapses each outer index creates, the
## host turns the counts into offsets, 'fill' writes them in Brian2's order.
## Both passes draw the same random numbers (counter-based RNG keyed by the
## outer index), so they agree.  sample(..., p=) visits every element (or
## jumps between hits); sample(..., size=) uses selection sampling.
## USES_VARIABLES { _synaptic_pre, _synaptic_post, N_incoming, N_outgoing, N, N_pre, N_post, _source_offset, _target_offset }
## WRITES_TO_READ_ONLY_VARIABLES { _synaptic_pre, _synaptic_post, N_incoming, N_outgoing, N }
<%namespace file="common.mako" import="*"/>
<%
    kw = c.kw
    outer, result = kw['outer_index'], kw['result_index']
    outer_arr, result_arr = kw['outer_index_array'], kw['result_index_array']
    it = kw['iterator_func']
    fixed = it == 'sample' and kw['iterator_kwds'].get('sample_size') == 'fixed'
    err = c.ptr("_sg_error")
%>
## The first error wins (atomic): [code, value, value, outer index].  Codes:
## 1 index out of range, 2 sample size above the population, 3 negative
## sample size, 4 step of zero (GPUDevice.connect raises them).
<%def name="report_error(code, a, b)">
                if (sg_atomic_cas_int(&${err}[0], 0, ${code}) == 0) {
                    ${err}[1] = (int32_t)(${a}); ${err}[2] = (int32_t)(${b}); ${err}[3] = (int32_t)_${outer};
                }
</%def>
%for mode in ('count', 'fill'):
${signature(c, mode)}
{
    ${prologue(c)}
    const int64_t _n_outer = ${c.vars[kw['outer_index_size']]};
    const int64_t _n_result = ${c.vars[kw['result_index_size']]};
    ## loop-invariant parts of the expressions (e.g. N_post - 1 in range())
%for block in ('setup_iterator', 'generator_expr', 'create_cond', 'update'):
    ${code(c.scalar_code[block])}
%endfor
    for (int64_t _${outer} = SG_GID; _${outer} < _n_outer; _${outer} += SG_GSIZE) {
        const int64_t _vectorisation_idx = _${outer};
        ${rng(c, '_' + outer)}
        int32_t _raw_pre_idx, _raw_post_idx;
        char __cond = 1, _cond = 1;
        int64_t _created = 0;
%if mode == 'fill':
        int64_t _pos = ${c.ptr("_sg_counts")}[_${outer}];
%else:
        ${c.ptr("_sg_counts")}[_${outer}] = 0;
%endif
        _raw${outer_arr} = (int32_t)(_${outer} + ${c.vars[kw['outer_index_offset']]});
%if not kw['result_index_condition']:
        {
            ${code(c.vector_code['create_cond'])}
            __cond = _cond;
        }
        _cond = __cond;
        if (!_cond) continue;
%endif
        int64_t _uiter_low, _uiter_high, _uiter_step;
        double _uiter_p = 1.0;
        int64_t _uiter_size = 0;
        {
            ${code(c.vector_code['setup_iterator'])}
            _uiter_low = _iter_low;
            _uiter_high = _iter_high;
            _uiter_step = _iter_step;
%if fixed:
            _uiter_size = _iter_size;
%elif it == 'sample':
            _uiter_p = _iter_p;
%endif
        }
        if (_uiter_step == 0) {       // Python's range() refuses it too
            ${report_error(4, 0, 0)}
            continue;
        }
        const int64_t _iter_sign = _uiter_step > 0 ? 1 : -1;
%if it == 'range':
        for (int64_t ${kw['inner_variable']} = _uiter_low; _iter_sign * ${kw['inner_variable']} < _iter_sign * _uiter_high; ${kw['inner_variable']} += _uiter_step) {
%elif fixed:
        ## Selection sampling (Knuth, TAOCP vol. 2, 3.4.2, algorithm S): walk
        ## the range in its order and take each element with probability
        ## needed/left -- exactly 'size' distinct elements in iteration order,
        ## every subset equally likely, one uniform per element visited while
        ## the choice is open (none once needed == left).
        int64_t _left = _uiter_step > 0
            ? _sg_ifloordiv(_uiter_high - _uiter_low - 1, _uiter_step) + 1
            : _sg_ifloordiv(_uiter_low - _uiter_high - 1, -_uiter_step) + 1;
        if (_left < 0) _left = 0;
        int64_t _needed = _uiter_size;
        if (_needed > _left) {
%if kw['skip_if_invalid']:
            _needed = _left;
%else:
            ${report_error(2, '_needed', '_left')}
            continue;
%endif
        } else if (_needed < 0) {
%if not kw['skip_if_invalid']:
            ${report_error(3, '_needed', 0)}
%endif
            continue;
        }
        for (int64_t ${kw['inner_variable']} = _uiter_low; _needed > 0; ${kw['inner_variable']} += _uiter_step) {
            const char _take = _needed == _left
                || (double)_left * _sg_uniform(&_sg_rng) < (double)_needed;
            _left--;
            if (!_take) continue;
            _needed--;
%else:
        if (_uiter_p == 0) continue;
        const char _jump_algo = _uiter_p < 0.25;
        const double _pconst = _jump_algo ? 1.0 / log(1.0 - _uiter_p) : 1.0;
        for (int64_t ${kw['inner_variable']} = _uiter_low; _iter_sign * ${kw['inner_variable']} < _iter_sign * _uiter_high; ${kw['inner_variable']} += _uiter_step) {
            if (_jump_algo) {
                const double _r = _sg_uniform(&_sg_rng);
                if (_r == 0.0) break;
                ${kw['inner_variable']} += (int64_t)floor(log(_r) * _pconst) * _uiter_step;
                if (_iter_sign * ${kw['inner_variable']} >= _iter_sign * _uiter_high) continue;
            } else {
                if (_sg_uniform(&_sg_rng) >= _uiter_p) continue;
            }
%endif
            int64_t __${result}, _${result};
            int32_t _${outer_arr};
            {
                ${code(c.vector_code['generator_expr'])}
                __${result} = _${result};
                _${outer_arr} = ${outer_arr};
            }
            _${result} = __${result};
            const int32_t ${outer_arr} = _${outer_arr};
            _raw${result_arr} = (int32_t)(_${result} + ${c.vars[kw['result_index_offset']]});
<%def name="range_check()">
            if (_${result} < 0 || _${result} >= _n_result) {
%if kw['skip_if_invalid']:
                continue;
%else:
                ${report_error(1, '_' + result, 0)}
                continue;
%endif
            }
</%def>
%if kw['result_index_condition']:
%if kw['result_index_used']:
            ${range_check()}
%endif
            {
                ${code(c.vector_code['create_cond'])}
                __cond = _cond;
            }
            _cond = __cond;
%endif
            if (!_cond) continue;
%if not kw['result_index_used']:
            ${range_check()}
%endif
            {
            ${code(c.vector_code['update'])}
            for (int32_t _rep = 0; _rep < _n; _rep++) {
%if mode == 'count':
                _created++;
%else:
                ${c.ptr('_synaptic_pre')}[_pos] = _pre_idx;
                ${c.ptr('_synaptic_post')}[_pos] = _post_idx;
                sg_atomic_add_int(&${c.ptr('N_outgoing')}[_pre_idx], 1);
                sg_atomic_add_int(&${c.ptr('N_incoming')}[_post_idx], 1);
                _pos++;
%endif
            }
            }
        }
%if mode == 'count':
        ${c.ptr("_sg_counts")}[_${outer}] = _created;
%endif
    }
}
%endfor
