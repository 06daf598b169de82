## The rows of a synaptic pathway, built on the device (driven by
## spikegpu/csrbuild.py; the layout is described in spikegpu/synqueue.py).
## Rendered after the prelude with:
##   ktype  the C type of sort keys (uint32_t, or uint64_t where
##          n_sources x delay range does not fit 32 bits)
##   dtype  the C type of the delays (Brian2's float type)
##   wg     the work-group size every kernel here is launched with (a power of 2)
##   items  elements per thread of a tile (tile = wg * items elements)
## The key of synapse k is (source - src0) * R + (steps - steps0), steps its
## delay rounded as Brian2's C++ spike queue rounds; a stable sort by key of
## the synapse indices gives Brian2's order in a row (by delay, then synapse).
## Kernels that read keys come in two flavours: 'direct' computes them from
## the sources and delays at synapse index p (the identity order: the first
## sort pass, or synapses that are in order already), 'sorted' reads them
## from a sorted key array.  Every kernel strides over its grid.
<%
    RADIX_BITS = 4
    RADIX = 1 << RADIX_BITS
    TILE = wg * items
%>
typedef ${ktype} _sg_key_t;
typedef ${dtype} _sg_delay_t;

SG_FN int64_t _sg_csr_steps(SG_GLOBAL const _sg_delay_t *delay, const int64_t stride,
                            const double dt, const int64_t k)
{
    return sg_delay_steps((double)delay[k * stride], dt);
}

## splitmix64's finaliser: the checksum of (synapse, source, steps) below
SG_FN uint64_t _sg_csr_mix(uint64_t x)
{
    x ^= x >> 30; x *= (uint64_t)0xbf58476d1ce4e5b9UL;
    x ^= x >> 27; x *= (uint64_t)0x94d049bb133111ebUL;
    return x ^ (x >> 31);
}

## parameters of every kernel that reads keys (a flavour uses its part)
<%def name="key_params()">SG_GLOBAL const int32_t *_src, SG_GLOBAL const _sg_delay_t *_delay, const int64_t _dstride, const double _dt, const int64_t _src0, const int64_t _steps0, const int64_t _R, SG_GLOBAL const _sg_key_t *_kin, SG_GLOBAL const int32_t *_vin</%def>
<%def name="key_at(p, flavor)">\
%if flavor == 'direct':
((_sg_key_t)(_src[${p}] - _src0) * (_sg_key_t)_R + (_sg_key_t)(_sg_csr_steps(_delay, _dstride, _dt, ${p}) - _steps0))\
%else:
_kin[${p}]\
%endif
</%def>
<%def name="value_at(p, flavor)">${'(int32_t)(%s)' % p if flavor == 'direct' else '_vin[%s]' % p}</%def>
<%def name="source_at(p, flavor)">\
%if flavor == 'direct':
((int64_t)_src[${p}])\
%else:
((int64_t)(_kin[${p}] / (_sg_key_t)_R) + _src0)\
%endif
</%def>
<%def name="steps_at(p, flavor)">\
%if flavor == 'direct':
_sg_csr_steps(_delay, _dstride, _dt, ${p})\
%else:
((int64_t)(_kin[${p}] % (_sg_key_t)_R) + _steps0)\
%endif
</%def>

## Exclusive prefix sum of one int32 per thread over the work-group
## (needs SG_LOCAL int32_t _sg_ws[wg]): ``before`` gets the sum of the
## threads before, ``total`` (if named) the sum of all.
<%def name="wg_scan(val, before, total=None)">
        ${before} = sg_group_scan(_sg_ws, ${val}) - (${val});
%if total:
        ${total} = _sg_ws[${wg} - 1];
%endif
        SG_BARRIER_LOCAL();
</%def>

## Reduction of one int64 per thread over the work-group (needs SG_LOCAL
## int64_t _sg_wr[wg]); every thread gets the result in ``var``.
<%def name="wg_reduce(var, op)">
<%
    combine = {'min': '_a < _b ? _a : _b', 'max': '_a > _b ? _a : _b',
               'sum': '(int64_t)((uint64_t)_a + (uint64_t)_b)'}[op]
%>
        _sg_wr[SG_LID] = ${var};
        SG_BARRIER_LOCAL();
        for (int _o = ${wg} / 2; _o > 0; _o >>= 1) {
            if (SG_LID < _o) {
                const int64_t _a = _sg_wr[SG_LID], _b = _sg_wr[SG_LID + _o];
                _sg_wr[SG_LID] = ${combine};
            }
            SG_BARRIER_LOCAL();
        }
        ${var} = _sg_wr[0];
        SG_BARRIER_LOCAL();
</%def>

## What decides whether a pathway's structure can be kept, and how to build
## it: per work-group, the least and greatest delay steps and source, a
## checksum of (synapse, source, steps) and the number of synapses whose
## (source, steps) is smaller than their predecessor's (0: in order, no sort).
SG_KERNEL _sg_csr_stats(SG_GLOBAL const int32_t *_src, SG_GLOBAL const _sg_delay_t *_delay,
                        const int64_t _dstride, const double _dt, const int64_t _n,
                        SG_GLOBAL int64_t *_out)
{
    SG_WHOLE_GRID
    SG_LOCAL int64_t _sg_wr[${wg}];
    const int64_t _big = (int64_t)(((uint64_t)1 << 63) - 1);
    int64_t _smin = _big, _smax = -_big, _srcmin = _big, _srcmax = -_big, _hash = 0, _desc = 0;
    for (int64_t _k = SG_GID; _k < _n; _k += SG_GSIZE) {
        const int64_t _s = _src[_k];
        const int64_t _d = _sg_csr_steps(_delay, _dstride, _dt, _k);
        _smin = _d < _smin ? _d : _smin;
        _smax = _d > _smax ? _d : _smax;
        _srcmin = _s < _srcmin ? _s : _srcmin;
        _srcmax = _s > _srcmax ? _s : _srcmax;
        _hash = (int64_t)((uint64_t)_hash + _sg_csr_mix(
            (uint64_t)_k * (uint64_t)0x9e3779b97f4a7c15UL
            ^ _sg_csr_mix(((uint64_t)(uint32_t)_s << 32) | (uint64_t)(uint32_t)_d)));
        if (_k > 0) {
            const int64_t _ps = _src[_k - 1];
            if (_ps > _s || (_ps == _s && _sg_csr_steps(_delay, _dstride, _dt, _k - 1) > _d))
                _desc++;
        }
    }
    ${wg_reduce('_smin', 'min')}
    ${wg_reduce('_smax', 'max')}
    ${wg_reduce('_srcmin', 'min')}
    ${wg_reduce('_srcmax', 'max')}
    ${wg_reduce('_hash', 'sum')}
    ${wg_reduce('_desc', 'sum')}
    if (SG_LID == 0) {
        SG_GLOBAL int64_t *_o = _out + (int64_t)SG_GROUP * 6;
        _o[0] = _smin; _o[1] = _smax; _o[2] = _srcmin; _o[3] = _srcmax; _o[4] = _hash; _o[5] = _desc;
    }
}

## out[k] = k: rowsyn of synapses in order, written out where events in flight
## extend it
SG_KERNEL _sg_csr_iota(const int64_t _n, SG_GLOBAL int32_t *_out)
{
    SG_WHOLE_GRID
    for (int64_t _k = SG_GID; _k < _n; _k += SG_GSIZE) _out[_k] = (int32_t)_k;
}

## ---- device-wide exclusive prefix sum of int32 (csrbuild.py: scan) ----
## a tile of ${TILE} elements per work-group, scanned in place; its sum to sums[tile]
SG_KERNEL _sg_csr_scan_tiles(SG_GLOBAL int32_t *_data, const int64_t _n,
                             SG_GLOBAL int32_t *_sums, const int64_t _ntiles)
{
    SG_WHOLE_GRID
    SG_LOCAL int32_t _sg_ws[${wg}];
    for (int64_t _g = SG_GROUP; _g < _ntiles; _g += SG_NGROUPS) {
        const int64_t _base = _g * ${TILE} + (int64_t)SG_LID * ${items};
        int32_t _sum = 0;
        for (int _i = 0; _i < ${items}; _i++)
            if (_base + _i < _n) _sum += _data[_base + _i];
        int32_t _before, _total;
        ${wg_scan('_sum', '_before', '_total')}
        for (int _i = 0; _i < ${items}; _i++)
            if (_base + _i < _n) {
                const int32_t _v = _data[_base + _i];
                _data[_base + _i] = _before;
                _before += _v;
            }
        if (SG_LID == 0) _sums[_g] = _total;
    }
}

## adds the scanned tile sums to the tiles
SG_KERNEL _sg_csr_scan_add(SG_GLOBAL int32_t *_data, const int64_t _n,
                           SG_GLOBAL const int32_t *_sums)
{
    SG_WHOLE_GRID
    for (int64_t _k = SG_GID; _k < _n; _k += SG_GSIZE) _data[_k] += _sums[_k / ${TILE}];
}

## ---- LSD radix sort of (key, synapse index), ${RADIX_BITS} bits a pass ----
## A tile of ${TILE} elements per work-group, ${items} consecutive elements per
## thread (threads in element order keep the sort stable).  Per tile: each
## thread counts its elements per digit into _sg_cnt[digit * wg + thread];
## the exclusive scan of _sg_cnt (digit-major) gives each thread its first
## place among the tile's elements of a digit.  'count' writes the tile's
## counts per digit to hist[digit * ntiles + tile] (digit-major, so that one
## exclusive scan of hist gives every (digit, tile) its place in the output),
## 'scatter' writes each element to its place.
<%def name="tile_ranks(flavor, total=None)">
        const int64_t _base = _g * ${TILE} + (int64_t)SG_LID * ${items};
        for (int _d = 0; _d < ${RADIX}; _d++) _sg_cnt[_d * ${wg} + SG_LID] = 0;
        for (int _i = 0; _i < ${items}; _i++) {
            const int64_t _p = _base + _i;
            if (_p < _n) {
                const _sg_key_t _key = ${key_at('_p', flavor)};
                _sg_cnt[(int)((_key >> _shift) & ${RADIX - 1}) * ${wg} + SG_LID] += 1;
            }
        }
        SG_BARRIER_LOCAL();
        int32_t _sum = 0;
        for (int _j = 0; _j < ${RADIX}; _j++) _sum += _sg_cnt[SG_LID * ${RADIX} + _j];
        int32_t _before;
        ${wg_scan('_sum', '_before', total)}
        for (int _j = 0; _j < ${RADIX}; _j++) {
            const int32_t _v = _sg_cnt[SG_LID * ${RADIX} + _j];
            _sg_cnt[SG_LID * ${RADIX} + _j] = _before;
            _before += _v;
        }
        SG_BARRIER_LOCAL();
</%def>
%for flavor in ('direct', 'sorted'):

SG_KERNEL _sg_csr_count_${flavor}(${key_params()}, const int64_t _n, const int32_t _shift,
                                  const int64_t _ntiles, SG_GLOBAL int32_t *_hist)
{
    SG_WHOLE_GRID
    SG_LOCAL int32_t _sg_cnt[${RADIX * wg}];
    SG_LOCAL int32_t _sg_ws[${wg}];
    for (int64_t _g = SG_GROUP; _g < _ntiles; _g += SG_NGROUPS) {
        int32_t _tile_n;
        ${tile_ranks(flavor, '_tile_n')}
        if (SG_LID < ${RADIX})
            _hist[SG_LID * _ntiles + _g] = (SG_LID < ${RADIX - 1} ? _sg_cnt[(SG_LID + 1) * ${wg}] : _tile_n)
                                           - _sg_cnt[SG_LID * ${wg}];
        SG_BARRIER_LOCAL();
    }
}

SG_KERNEL _sg_csr_scatter_${flavor}(${key_params()}, const int64_t _n, const int32_t _shift,
                                    const int64_t _ntiles, SG_GLOBAL const int32_t *_offsets,
                                    SG_GLOBAL _sg_key_t *_kout, SG_GLOBAL int32_t *_vout)
{
    SG_WHOLE_GRID
    SG_LOCAL int32_t _sg_cnt[${RADIX * wg}];
    SG_LOCAL int32_t _sg_ws[${wg}];
    SG_LOCAL int32_t _sg_off[${RADIX}];
    for (int64_t _g = SG_GROUP; _g < _ntiles; _g += SG_NGROUPS) {
        ${tile_ranks(flavor)}
        if (SG_LID < ${RADIX})
            _sg_off[SG_LID] = _offsets[SG_LID * _ntiles + _g] - _sg_cnt[SG_LID * ${wg}];
        SG_BARRIER_LOCAL();
        for (int _i = 0; _i < ${items}; _i++) {
            const int64_t _p = _base + _i;
            if (_p < _n) {
                const _sg_key_t _key = ${key_at('_p', flavor)};
                const int _d = (int)((_key >> _shift) & ${RADIX - 1});
                const int32_t _pos = _sg_off[_d] + _sg_cnt[_d * ${wg} + SG_LID]++;
                _kout[_pos] = _key;
                _vout[_pos] = ${value_at('_p', flavor)};
            }
        }
        SG_BARRIER_LOCAL();
    }
}

## rowstart[s] = the first position whose source is >= s (s = 0 .. nsrc)
SG_KERNEL _sg_csr_rows_${flavor}(${key_params()}, const int64_t _n, const int64_t _nsrc,
                                 SG_GLOBAL int32_t *_rowstart)
{
    SG_WHOLE_GRID
    for (int64_t _p = SG_GID; _p <= _n; _p += SG_GSIZE) {
        const int64_t _prev = _p > 0 ? ${source_at('_p - 1', flavor)} : -1;
        const int64_t _cur = _p < _n ? ${source_at('_p', flavor)} : _nsrc;
        for (int64_t _s = _prev + 1; _s <= _cur; _s++) _rowstart[_s] = (int32_t)_p;
    }
}

## bundles (maximal runs of one (source, steps)): flags[p] = 1 where one
## starts, flags[n] = 0 (an exclusive scan then gives bundle ids, and their
## number at n)
SG_KERNEL _sg_csr_bflags_${flavor}(${key_params()}, const int64_t _n, SG_GLOBAL int32_t *_flags)
{
    SG_WHOLE_GRID
    for (int64_t _p = SG_GID; _p <= _n; _p += SG_GSIZE)
        _flags[_p] = _p < _n && (_p == 0 || ${key_at('_p', flavor)} != ${key_at('_p - 1', flavor)});
}

## bstart[b] (its first position; bstart[n_bundles] = n) and bdelay[b] of
## every bundle b, from the scanned flags (bid)
SG_KERNEL _sg_csr_bstarts_${flavor}(${key_params()}, const int64_t _n,
                                    SG_GLOBAL const int32_t *_bid, SG_GLOBAL int32_t *_bstart,
                                    SG_GLOBAL int32_t *_bdelay)
{
    SG_WHOLE_GRID
    for (int64_t _p = SG_GID; _p <= _n; _p += SG_GSIZE) {
        if (_p == _n) {
            _bstart[_bid[_n]] = (int32_t)_n;
        } else if (_bid[_p + 1] != _bid[_p]) {
            _bstart[_bid[_p]] = (int32_t)_p;
            _bdelay[_bid[_p]] = (int32_t)${steps_at('_p', flavor)};
        }
    }
}
%endfor

## rowbundle[s] = the bundles that start before row s
SG_KERNEL _sg_csr_rowbundle(SG_GLOBAL const int32_t *_rowstart, SG_GLOBAL const int32_t *_bid,
                            const int64_t _nsrc, SG_GLOBAL int32_t *_rowbundle)
{
    SG_WHOLE_GRID
    for (int64_t _s = SG_GID; _s <= _nsrc; _s += SG_GSIZE) _rowbundle[_s] = _bid[_rowstart[_s]];
}

## per work-group, the greatest a[i + 1] - a[i] for i in [lo, hi) (0 if none):
## the longest row or bundle
SG_KERNEL _sg_csr_maxdiff(SG_GLOBAL const int32_t *_a, const int64_t _lo, const int64_t _hi,
                          SG_GLOBAL int64_t *_out)
{
    SG_WHOLE_GRID
    SG_LOCAL int64_t _sg_wr[${wg}];
    int64_t _m = 0;
    for (int64_t _i = _lo + SG_GID; _i < _hi; _i += SG_GSIZE) {
        const int64_t _l = (int64_t)_a[_i + 1] - _a[_i];
        _m = _l > _m ? _l : _m;
    }
    ${wg_reduce('_m', 'max')}
    if (SG_LID == 0) _out[SG_GROUP] = _m;
}
