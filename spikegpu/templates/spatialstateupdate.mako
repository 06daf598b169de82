## Brian2 object: SpatialStateUpdater (a SpatialNeuron's cable equation,
## implicit Euler, Brian2's scheme).  The structure (virtual sections,
## coupling tree, levels) and the choice of mode: spikegpu/spatial.py.
##   prepare  (before each run; over compartments): axial conductances, the
##            constant part of the tridiagonal matrix (Brian2's before_code)
##   currents (over compartments): _gtot, _I0 from the channels; v_previous
##   solve    (a thread per virtual section): the three tridiagonal solves
##   couple   (one work-group): the branch-point system, a level at a time
##   combine  (over compartments): v from the three solutions, Ic
## 'group' mode: currents, solve, couple, combine in one body ('step'), a
## work-group for the neuron.
## USES_VARIABLES { Cm, dt, v, N, Ic, Ri, area, r_length_1, r_length_2,
##                  _ab_star0, _ab_star1, _ab_star2, _v_star, _u_plus, _u_minus,
##                  _v_previous, _c, _invr,
##                  _starts, _ends, _morph_parent_i }
<%namespace file="common.mako" import="*"/>
<%def name="A(name)">${c.ptr(name)}</%def>
<%def name="T(name)">${c.ctype(c.variables[name])}</%def>
## -- per compartment: the membrane currents, and from them the diagonal of
## the tridiagonal system (_sg_sp_diag) and its right-hand side (in _v_star),
## as Brian2's STEP 2 computes them, so that the serial loop reads 2 arrays
## instead of 5 (Brian2's _gtot_all and _I0_all are not written)
<%def name="currents(first, stride)">
    {
    const int64_t _vectorisation_idx = -1;
    const double _dt = ${c.vars['dt']};
    ${rng(c, '0xFFFFFFFFu')}
    ${code(c.scalar_code)}
    for (int64_t _idx = ${first}; _idx < _N; _idx += ${stride}) {
        const int64_t _vectorisation_idx = _idx;
        ${rng(c, '_idx')}
        ${code(c.vector_code)}
        const double _vold = ${A('v')}[_idx];
        ${A('_v_previous')}[_idx] = _vold;
        ${A('_v_star')}[_idx] = -(${A('Cm')}[_idx] / _dt * _vold) - (double)_I0;
        ${A('_sg_sp_diag')}[_idx] = ${A('_ab_star1')}[_idx] - (double)_gtot;
    }
    }
</%def>
## -- per virtual section: the Thomas algorithm for the particular solution
## (_v_star: both ends at 0 V) and the two homogeneous ones (_u_minus: 1 V at
## the start, _u_plus: 1 V at the end), one factorisation (Brian2's STEP 2;
## the previous row stays in registers)
<%def name="solve(first, stride)">
    {
    for (int64_t _s = ${first}; _s < _nvs; _s += ${stride}) {
        const int32_t _j0 = ${A('_sg_sp_bound')}[_s];
        const int32_t _j1 = ${A('_sg_sp_bound')}[_s + 1];
        const double _g0 = ${A('_sg_sp_invr0')}[_s];
        const double _gn = ${A('_sg_sp_invrn')}[_s];
        double _cp = 0.0, _vp = 0.0, _pp = 0.0, _mp = 0.0;
        // the inputs of row _j + 1 are loaded before row _j is stored
        double _nb = ${A('_sg_sp_diag')}[_j0], _nv = ${A('_v_star')}[_j0];
        double _nc = (_j0 + 1 < _j1) ? (double)${A('_ab_star0')}[_j0 + 1] : 0.0;
        double _na = 0.0;
        for (int32_t _j = _j0; _j < _j1; _j++) {
            const double _bi = _nb, _ai = _na;
            double _vs = _nv, _cj = _nc;
            if (_j + 1 < _j1) {
                _nb = ${A('_sg_sp_diag')}[_j + 1];
                _nv = ${A('_v_star')}[_j + 1];
                _na = ${A('_ab_star2')}[_j];
                _nc = (_j + 2 < _j1) ? (double)${A('_ab_star0')}[_j + 2] : 0.0;
            }
            double _up = (_j == _j1 - 1) ? -(_gn / ${A('area')}[_j]) : 0.0;
            double _um = (_j == _j0) ? -(_g0 / ${A('area')}[_j]) : 0.0;
            const double _m = 1.0 / (_bi - _ai * _cp);
            _cj = _cj * _m;
            _vs = (_vs - _ai * _vp) * _m;
            _up = (_up - _ai * _pp) * _m;
            _um = (_um - _ai * _mp) * _m;
            ${A('_c')}[_j] = _cj;
            ${A('_v_star')}[_j] = _vs;
            ${A('_u_plus')}[_j] = _up;
            ${A('_u_minus')}[_j] = _um;
            _cp = _cj; _vp = _vs; _pp = _up; _mp = _um;
        }
        for (int32_t _j = _j1 - 2; _j >= _j0; _j--) {
            const double _cj = ${A('_c')}[_j];
            _vp = ${A('_v_star')}[_j] - _cj * _vp;
            _pp = ${A('_u_plus')}[_j] - _cj * _pp;
            _mp = ${A('_u_minus')}[_j] - _cj * _mp;
            ${A('_v_star')}[_j] = _vp;
            ${A('_u_plus')}[_j] = _pp;
            ${A('_u_minus')}[_j] = _mp;
        }
    }
    }
</%def>
## -- the coupling system in one work-group (Brian2's STEP 3).  Node i's row
## is built and its children eliminated in one go, at its level, after the
## levels below: the same operations in the same order as Brian2's loops.
## _sg_sp_ppar[s]: the row of node s + 1 at its parent node's column.
<%def name="couple()">
    {
    const int32_t _nlev = (int32_t)${c.num('_sg_sp_nlevels')};
    for (int32_t _l = _nlev - 1; _l >= 0; _l--) {
        const int32_t _kend = ${A('_sg_sp_lstart')}[_l + 1];
        for (int32_t _k = ${A('_sg_sp_lstart')}[_l] + SG_LID; _k < _kend; _k += SG_LSIZE) {
            const int32_t _i = ${A('_sg_sp_lnode')}[_k];
            const int32_t _c0 = ${A('_sg_sp_cstart')}[_i];
            const int32_t _c1 = ${A('_sg_sp_cstart')}[_i + 1];
            double _d, _b;
            if (_i == 0) {          // the start of the root section: sealed
                const int32_t _f = ${A('_sg_sp_bound')}[0];
                _d = ${A('_u_minus')}[_f] - 1.0;
                _b = -${A('_v_star')}[_f];
            } else {                // the end of virtual section _i - 1
                const int32_t _last = ${A('_sg_sp_bound')}[_i] - 1;
                const double _gn = ${A('_sg_sp_invrn')}[_i - 1];
                _d = (1.0 - ${A('_u_plus')}[_last]) * _gn;
                _b = ${A('_v_star')}[_last] * _gn;
                ${A('_sg_sp_ppar')}[_i - 1] = -${A('_u_minus')}[_last] * _gn;
                for (int32_t _k2 = _c0; _k2 < _c1; _k2++) {
                    const int32_t _ch = ${A('_sg_sp_child')}[_k2];
                    const int32_t _f = ${A('_sg_sp_bound')}[_ch];
                    const double _g0 = ${A('_sg_sp_invr0')}[_ch];
                    _d += (1.0 - ${A('_u_minus')}[_f]) * _g0;
                    _b += ${A('_v_star')}[_f] * _g0;
                }
            }
            for (int32_t _k2 = _c0; _k2 < _c1; _k2++) {
                const int32_t _ch = ${A('_sg_sp_child')}[_k2];
                const int32_t _f = ${A('_sg_sp_bound')}[_ch];
                const double _pc = (_i == 0) ? (double)${A('_u_plus')}[_f]
                                             : -${A('_u_plus')}[_f] * ${A('_sg_sp_invr0')}[_ch];
                const double _sub = _pc / ${A('_sg_sp_pdiag')}[_ch + 1];
                _d = _d - _sub * ${A('_sg_sp_ppar')}[_ch];
                _b = _b - _sub * ${A('_sg_sp_b')}[_ch + 1];
            }
            ${A('_sg_sp_pdiag')}[_i] = _d;
            ${A('_sg_sp_b')}[_i] = _b;
        }
        SG_BARRIER();
    }
    for (int32_t _l = 0; _l < _nlev; _l++) {
        const int32_t _kend = ${A('_sg_sp_lstart')}[_l + 1];
        for (int32_t _k = ${A('_sg_sp_lstart')}[_l] + SG_LID; _k < _kend; _k += SG_LSIZE) {
            const int32_t _i = ${A('_sg_sp_lnode')}[_k];
            if (_i == 0) {
                ${A('_sg_sp_b')}[0] = ${A('_sg_sp_b')}[0] / ${A('_sg_sp_pdiag')}[0];
            } else {
                const double _bp = ${A('_sg_sp_b')}[${A('_sg_sp_pnode')}[_i - 1]];
                double _b = ${A('_sg_sp_b')}[_i] - ${A('_sg_sp_ppar')}[_i - 1] * _bp;
                ${A('_sg_sp_b')}[_i] = _b / ${A('_sg_sp_pdiag')}[_i];
            }
        }
        SG_BARRIER();
    }
    }
</%def>
## -- per compartment: the solution (Brian2's STEP 4) and Ic
<%def name="combine(first, stride)">
    {
    const double _dt = ${c.vars['dt']};
    for (int64_t _j = ${first}; _j < _N; _j += ${stride}) {
        const int32_t _s = ${A('_sg_sp_vsec')}[_j];
        const double _bs = ${A('_sg_sp_b')}[${A('_sg_sp_pnode')}[_s]];
        const double _be = ${A('_sg_sp_b')}[_s + 1];
        const ${T('v')} _v = ${A('_v_star')}[_j] + _bs * ${A('_u_minus')}[_j] + _be * ${A('_u_plus')}[_j];
        ${A('v')}[_j] = _v;
        ${A('Ic')}[_j] = ${A('Cm')}[_j] * (_v - ${A('_v_previous')}[_j]) / _dt;
    }
    }
</%def>
## -- before a run: axial conductances and the constant part of the matrix,
## for the virtual sections (Brian2's before_code; with Brian2's sections
## the same values)
${signature(c, 'prepare')}
{
    const int64_t _N = ${c.vars['N']};
    const int64_t _nvs = ${c.num('_sg_sp_nvs')};
    const double _Ri = ${c.vars['Ri']};
    const double _dt = ${c.vars['dt']};
    for (int64_t _s = SG_GID; _s < _nvs; _s += SG_GSIZE) {
        ${A('_sg_sp_invr0')}[_s] = ${A('r_length_1')}[${A('_sg_sp_bound')}[_s]] / _Ri;
        ${A('_sg_sp_invrn')}[_s] = ${A('r_length_2')}[${A('_sg_sp_bound')}[_s + 1] - 1] / _Ri;
    }
    for (int64_t _j = SG_GID; _j < _N; _j += SG_GSIZE) {
        const int32_t _s = ${A('_sg_sp_vsec')}[_j];
        const int32_t _j0 = ${A('_sg_sp_bound')}[_s];
        const int32_t _j1 = ${A('_sg_sp_bound')}[_s + 1];
        const double _invr = (_j == _j0) ? 0.0
            : 1.0 / (_Ri * (1.0 / ${A('r_length_2')}[_j - 1] + 1.0 / ${A('r_length_1')}[_j]));
        const double _invr_next = (_j + 1 < _j1)
            ? 1.0 / (_Ri * (1.0 / ${A('r_length_2')}[_j] + 1.0 / ${A('r_length_1')}[_j + 1])) : 0.0;
        const double _area = ${A('area')}[_j];
        ${A('_invr')}[_j] = _invr;
        double _d = (-(${A('Cm')}[_j] / _dt) - _invr / _area);
        if (_j + 1 < _N) _d -= _invr_next / _area;
        if (_j == _j0) _d -= (${A('r_length_1')}[_j] / _Ri) / _area;
        if (_j == _j1 - 1) _d -= (${A('r_length_2')}[_j] / _Ri) / _area;
        ${A('_ab_star1')}[_j] = _d;
        ${A('_ab_star0')}[_j] = (_j > 0) ? _invr / ${A('area')}[_j - 1] : 0.0;
        ${A('_ab_star2')}[_j] = (_j + 1 < _N) ? _invr_next / ${A('area')}[_j + 1] : 0.0;
    }
}

%if c.kw['_sg_sp_mode'] == 'group':
${signature(c, 'step')}
{
    if (SG_GROUP != 0) return;      // the neuron is one work-group's
    ${prologue(c)}
    const int64_t _N = ${c.vars['N']};
    const int64_t _nvs = ${c.num('_sg_sp_nvs')};
    ${currents('SG_LID', 'SG_LSIZE')}
    SG_BARRIER();
    ${solve('SG_LID', 'SG_LSIZE')}
    SG_BARRIER();
    ${couple()}
    ${combine('SG_LID', 'SG_LSIZE')}
}
%else:
${signature(c, 'currents')}
{
    ${prologue(c)}
    const int64_t _N = ${c.vars['N']};
    ${currents('SG_GID', 'SG_GSIZE')}
}

${signature(c, 'solve')}
{
    const int64_t _nvs = ${c.num('_sg_sp_nvs')};
    ${solve('SG_GID', 'SG_GSIZE')}
}

${signature(c, 'couple')}
{
    if (SG_GROUP != 0) return;      // one work-group solves the tree
    ${couple()}
}

${signature(c, 'combine')}
{
    const int64_t _N = ${c.vars['N']};
    ${combine('SG_GID', 'SG_GSIZE')}
}
%endif
