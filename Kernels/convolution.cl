// Direct convolution (see OpenCLConvolution.swift): every work-item computes its outputs from the
// activation itself, so no column matrix is written or read. Activations are [C, N, H, W], weights
// [Co, Ci/GROUPS, k, k]. This file is built apart from the others, once per layer shape, specialised with:
//   KS, ST     the window's size and stride;
//   DIL        the spacing of its taps (dilation; 1 when not given);
//   GROUPS     channel groups (1 when not given): an output channel sums only its group's input channels, and
//              every CT or WCT tile of channels lies in one group (OpenCLConvolution.swift picks tiles that
//              divide a group's channels);
//   OXT, CT    a forward or input-gradient work-item's outputs: OXT neighbours along a row times CT channels;
//   WCT, WKY   a weight-gradient work-item's sums: WCT output channels times WKY window rows (all KS, or 1);
//   BNC        when > 0, the output gradient is that of a batch norm over this convolution's BNC output
//              channels, applied on the fly (conv_backward's prologue): the normalised gradient is never stored;
//   STATS      1: conv_forward also computes the batch statistics of the batch norm after it.
// The fused forms (STATS, BNC, conv_backward) are for GPUs: a CPU device (PoCL) runs a work-group's items
// as vector lanes in loops between barriers, where they cost more than the passes they save.
// An item keeps its sums in registers and reads each input row segment once for all of them, so the
// sums outnumber the loads; OpenCLConvolution.swift picks the tiles per layer so that a GPU still sees
// hundreds of work-groups. Items past the end compute on a clamped index and write nothing: no early
// return, so loops run the same trip count in every item of a group, and every item meets the barriers.
#ifndef KS
#define KS 3
#endif
#ifndef ST
#define ST 1
#endif
#ifndef DIL
#define DIL 1
#endif
#ifndef GROUPS
#define GROUPS 1
#endif
#ifndef OXT
#define OXT 4
#endif
#ifndef CT
#define CT 8
#endif
#ifndef WCT
#define WCT 8
#endif
#ifndef WKY
#define WKY KS
#endif
#ifndef BNC
#define BNC 0
#endif
// ACC=1: the input gradient is added to what dx holds (a value read by several layers), not written.
#ifndef ACC
#define ACC 0
#endif
#ifndef STATS
#define STATS 0
#endif
// Input columns under OXT neighbouring windows of a row.
#define SPAN ((OXT - 1) * ST + (KS - 1) * DIL + 1)

// Sums over the work-group of `count` values per item (count <= CT + 1) in a fixed tree order: every
// item gets the totals in `v`. `scratch` holds count * REDUCE_GROUP floats.
__attribute__((always_inline)) void group_sums(float* v, const int count, __local float* scratch) {
    const int lid = get_local_id(0);
    for (int k = 0; k < count; ++k) scratch[k * REDUCE_GROUP + lid] = v[k];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int span = REDUCE_GROUP / 2; span > 0; span >>= 1) {
        if (lid < span)
            for (int k = 0; k < count; ++k) scratch[k * REDUCE_GROUP + lid] += scratch[k * REDUCE_GROUP + lid + span];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int k = 0; k < count; ++k) v[k] = scratch[k * REDUCE_GROUP];
    barrier(CLK_LOCAL_MEM_FENCE);
}

// The batch norm's backward, per channel, in local memory: mean, 1/sigma, gamma/sigma, mean(dy) and
// mean(dy * xhat), from the sums of batch_norm_backward_sums ([c][slice][2], folded in slice order by
// one item per channel, so every group gets the same numbers).
#define BN_VALUES 5
__attribute__((always_inline)) void batch_norm_prologue(
        __global const float* sums, int slices, int row, __global const float* gamma,
        __global const float* saved_mean, __global const float* saved_inv_std, __local float* bn) {
    for (int c = get_local_id(0); c < BNC; c += get_local_size(0)) {
        float s = 0.0f, t = 0.0f;
        for (int k = 0; k < slices; ++k) { s += sums[2 * (c * slices + k)]; t += sums[2 * (c * slices + k) + 1]; }
        bn[BN_VALUES * c] = saved_mean[c];
        bn[BN_VALUES * c + 1] = saved_inv_std[c];
        bn[BN_VALUES * c + 2] = gamma[c] * saved_inv_std[c];
        bn[BN_VALUES * c + 3] = s / (float)row;
        bn[BN_VALUES * c + 4] = t / (float)row;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}

// The output gradient at `index` of channel c: dy itself, or with `normalized` the batch norm's input
// gradient gamma/sigma * (dy - mean(dy) - xhat * mean(dy * xhat)), through a folded activation
// (as batch_norm_backward_data computes it). z is the convolution's output, the batch norm's input.
__attribute__((always_inline)) float gradient_at(__global const float* dy, __global const float* z, long index, int c,
                                                 __local const float* bn, const bool normalized, float slope) {
    if (!normalized) return dy[index];
    const float v = z[index];
    const float xhat = (ACTIVATED(v) - bn[BN_VALUES * c]) * bn[BN_VALUES * c + 1];
    const float d = bn[BN_VALUES * c + 2] * (dy[index] - bn[BN_VALUES * c + 3] - xhat * bn[BN_VALUES * c + 4]);
    return ACTIVATION_GRADIENT(v, d);
}

// acc[t][o] = sum over c, a, b of W(t, c, a, b) * in[c][n][oy*ST - pad + a*DIL][(ox0 + o)*ST - pad + b*DIL],
// zero outside the image, for an item's OXT outputs of one row and CT output channels from t0. W(t, c, a, b)
// is w[t*t_stride + c*c_stride + a*KS + b], or with `flip` the window turned by 180°: the transposed
// convolution is then the same loop. With `normalized`, `in` is read through gradient_at. With GROUPS, c
// runs over the tile's group only, and the weights' per-group channel index (c, or t with `flip`) counts
// from the group's first channel.
__attribute__((always_inline)) void conv_sums(
        __global const float* in, __global const float* z, __local const float* bn, const bool normalized, float slope,
        __global const float* w, int channels, int batch, int height, int width, int out_channels, int pad,
        int t0, int n, int oy, int ox0, int t_stride, int c_stride, const bool flip, float acc[CT][OXT]) {
    for (int t = 0; t < CT; ++t)
        for (int o = 0; o < OXT; ++o) acc[t][o] = 0.0f;
#if GROUPS > 1
    const int group = t0 / (out_channels / GROUPS), c_begin = group * (channels / GROUPS), c_end = c_begin + channels / GROUPS;
    w -= (long)group * ((flip ? out_channels : channels) / GROUPS) * KS * KS;
#else
    const int c_begin = 0, c_end = channels;
#endif
    for (int c = c_begin; c < c_end; ++c) {
        const long plane = (long)(c * batch + n) * height * width;
        // One window row at a time: unrolled, the compiler would load every row's inputs and weights
        // up front and run out of registers on a GPU.
#pragma unroll 1
        for (int a = 0; a < KS; ++a) {
            const int iy = oy * ST - pad + a * DIL;
            const bool row_inside = iy >= 0 && iy < height;
            float row[SPAN];
            for (int j = 0; j < SPAN; ++j) {
                const int ix = ox0 * ST - pad + j;
                row[j] = row_inside && ix >= 0 && ix < width
                    ? gradient_at(in, z, plane + iy * width + ix, c, bn, normalized, slope) : 0.0f;
            }
            for (int t = 0; t < CT; ++t) {
                // Channels past the last read the last one's weights and are never written.
                __global const float* wt = w + (long)min(t0 + t, out_channels - 1) * t_stride + (long)c * c_stride;
                for (int b = 0; b < KS; ++b) {
                    const float wv = flip ? wt[(KS - 1 - a) * KS + KS - 1 - b] : wt[a * KS + b];
                    for (int o = 0; o < OXT; ++o) acc[t][o] += wv * row[o * ST + b * DIL];
                }
            }
        }
    }
}

// Item `item` of a row-tiled launch over `padded` items per channel tile (whole work-groups, so a group
// reads one tile's weights throughout): its first channel, image, row and first column.
typedef struct { int t0, n, oy, ox0; bool live; } RowItem;
__attribute__((always_inline)) RowItem row_item(int gid, int padded, int batch, int out_height, int out_width) {
    const int segments = (out_width + OXT - 1) / OXT, items = batch * out_height * segments;
    const int item = gid % padded, i = min(item, items - 1);
    RowItem r;
    r.t0 = gid / padded * CT;
    r.ox0 = i % segments * OXT;
    r.oy = i / segments % out_height;
    r.n = i / (segments * out_height);
    r.live = item < items;
    return r;
}

// out[t0 + t][n, oy, ox0 + o] = acc[t][o], for the item's outputs inside.
__attribute__((always_inline)) void store_rows(__global float* out, float acc[CT][OXT], RowItem r, int batch,
                                               int out_channels, int out_height, int out_width, const bool add) {
#if !ACC
    (void)add;
#endif
    if (!r.live) return;
    const long pixels = (long)batch * out_height * out_width;
    for (int t = 0; t < CT && r.t0 + t < out_channels; ++t)
        for (int o = 0; o < OXT; ++o)
            if (r.ox0 + o < out_width) {
                const long i = (r.t0 + t) * pixels + (r.n * out_height + r.oy) * out_width + r.ox0 + o;
#if ACC
                out[i] = add ? out[i] + acc[t][o] : acc[t][o];
#else
                out[i] = acc[t][o];  // (the plain store, the same code as without ACC: no register spent)
#endif
            }
}

// y = conv(x, w) + bias (bias may be null): output channels in tiles of CT. With STATS, the batch norm
// that follows gets its first stage here: each work-group writes, per channel of its tile,
// (count, mean, sum of squared deviations) of its outputs (after the folded activation, `slope`) to
// statistics[(channel * groups per tile + group) * 3], as batch_norm_statistics does for its slices.
__kernel void conv_forward(__global const float* x, __global const float* w, __global const float* bias,
                           __global float* y, int in_channels,
                           int batch, int height, int width, int out_channels, int out_height, int out_width,
                           int pad, int padded, __global float* statistics, float slope) {
    const RowItem r = row_item(get_global_id(0), padded, batch, out_height, out_width);
    float acc[CT][OXT];
    conv_sums(x, 0, 0, false, 0, w, in_channels, batch, height, width, out_channels, pad, r.t0, r.n, r.oy, r.ox0,
              in_channels / GROUPS * KS * KS, KS * KS, false, acc);
    if (bias)
        for (int t = 0; t < CT; ++t)
            for (int o = 0; o < OXT; ++o) acc[t][o] += bias[min(r.t0 + t, out_channels - 1)];
    store_rows(y, acc, r, batch, out_channels, out_height, out_width, false);
#if STATS
    __local float scratch[(CT + 1) * REDUCE_GROUP];
    float v[CT + 1];
    v[CT] = 0.0f;
    for (int o = 0; o < OXT; ++o) v[CT] += r.live && r.ox0 + o < out_width ? 1.0f : 0.0f;
    for (int t = 0; t < CT; ++t) {
        v[t] = 0.0f;
        for (int o = 0; o < OXT; ++o) v[t] += r.live && r.ox0 + o < out_width ? ACTIVATED(acc[t][o]) : 0.0f;
    }
    group_sums(v, CT + 1, scratch);
    const float count = v[CT];
    float mean[CT];
    for (int t = 0; t < CT; ++t) {
        mean[t] = v[t] / count;
        v[t] = 0.0f;
        for (int o = 0; o < OXT; ++o) {
            const float d = ACTIVATED(acc[t][o]) - mean[t];
            v[t] += r.live && r.ox0 + o < out_width ? d * d : 0.0f;
        }
    }
    group_sums(v, CT, scratch);
    if (get_local_id(0) != 0) return;
    const int groups = padded / (int)get_local_size(0), g = get_global_id(0) % padded / (int)get_local_size(0);
    for (int t = 0; t < CT && r.t0 + t < out_channels; ++t) {
        __global float* s = statistics + 3 * ((long)(r.t0 + t) * groups + g);
        s[0] = count;
        s[1] = mean[t];
        s[2] = v[t];
    }
#else
    (void)statistics; (void)slope;
#endif
}

// Stage 1 of the weight gradient dw[co, ci, ky, kx] = sum over the batch's output pixels p of
// dy[co][p] * x[ci][window of p]: a sum of N·OH·OW terms into few outputs, so it is split. Item (j, u)
// sums pixels u, u + parts, u + 2·parts, … for one j = (tile of WCT output channels, ci, WKY window rows)
// (ci counts within the tile's group: the input channel read is the group's first plus ci):
// WCT·WKY·KS sums, written to partials[u][co, ci, ky, kx]. With `bias_sums`, the items of ci = 0 and the
// first window rows also sum dy itself, the bias gradient, into partials[u][weights + co]. `parts` is
// a multiple of the work-group size, so a group shares j and its items read neighbouring pixels
// (contiguous loads). Stage 2 sums over u in a fixed order (sum_gradients).
__attribute__((always_inline)) void weight_sums(
        int gid, __global const float* x, __global const float* dy, __global const float* z, __local const float* bn,
        const bool normalized, float slope, __global float* partials, int in_channels, int batch, int height, int width,
        int out_channels, int out_height, int out_width, int pad, int bias_sums, int parts) {
    const int group_in = in_channels / GROUPS;
    const int u = gid % parts, j = gid / parts;
    const int ky0 = j % (KS / WKY) * WKY, ci = j / (KS / WKY) % group_in, co0 = j / (KS / WKY * group_in) * WCT;
#if GROUPS > 1
    const int ci_read = co0 / (out_channels / GROUPS) * group_in + ci;
#else
    const int ci_read = ci;
#endif
    const int pixels = batch * out_height * out_width;
    // The pixel (n, oy, ox) advances by `parts` each round: by (dn, dy, dx) with carries, no division.
    const int step_x = parts % out_width, step_y = parts / out_width % out_height, step_n = parts / (out_width * out_height);
    int ox = u % out_width, oy = u / out_width % out_height, n = u / (out_width * out_height);
    const bool sums_bias = bias_sums && ci == 0 && ky0 == 0;  // the same for a whole work-group
    float acc[WCT][WKY * KS], bias_acc[WCT];
    for (int t = 0; t < WCT; ++t) {
        bias_acc[t] = 0.0f;
        for (int b = 0; b < WKY * KS; ++b) acc[t][b] = 0.0f;
    }
    // Not unrolled: a copy of the body per unrolled round would double the registers it needs.
#pragma unroll 1
    for (int p0 = 0; p0 < pixels; p0 += parts) {
        // The last round's items past the end read a clamped pixel and add nothing.
        const bool live = p0 + u < pixels;
        const int p = live ? p0 + u : pixels - 1, n_read = live ? n : batch - 1;
        float g[WCT];
        for (int t = 0; t < WCT; ++t) {
            const int co = min(co0 + t, out_channels - 1);
            g[t] = live ? gradient_at(dy, z, (long)co * pixels + p, co, bn, normalized, slope) : 0.0f;
        }
        if (sums_bias)
            for (int t = 0; t < WCT; ++t) bias_acc[t] += g[t];
        __global const float* plane = x + (long)(ci_read * batch + n_read) * height * width;
        for (int a = 0; a < WKY; ++a) {
            const int iy = oy * ST - pad + (ky0 + a) * DIL;
            for (int b = 0; b < KS; ++b) {
                const int ix = ox * ST - pad + b * DIL;
                const float v = live && iy >= 0 && iy < height && ix >= 0 && ix < width ? plane[iy * width + ix] : 0.0f;
                for (int t = 0; t < WCT; ++t) acc[t][a * KS + b] += g[t] * v;
            }
        }
        ox += step_x;
        if (ox >= out_width) { ox -= out_width; ++oy; }
        oy += step_y;
        if (oy >= out_height) { oy -= out_height; ++n; }
        n += step_n;
    }
    const long weights = (long)out_channels * group_in * KS * KS, row = weights + (bias_sums ? out_channels : 0);
    for (int t = 0; t < WCT && co0 + t < out_channels; ++t) {
        for (int a = 0; a < WKY; ++a)
            for (int b = 0; b < KS; ++b)
                partials[u * row + (((long)(co0 + t) * group_in + ci) * KS + ky0 + a) * KS + b] = acc[t][a * KS + b];
        if (sums_bias) partials[u * row + weights + co0 + t] = bias_acc[t];
    }
}

// dx for ST > 1, as a gather: each input pixel sums w * dy over the windows that cover it (most taps
// miss the stride's grid). One item per input pixel and CT input channels (of one group: its output
// channels are the ones summed).
__attribute__((always_inline)) void strided_input_gradient(
        int gid, __global const float* dy, __global const float* z, __local const float* bn, const bool normalized,
        float slope, __global const float* w, __global float* dx, int in_channels, int batch, int height, int width,
        int out_channels, int out_height, int out_width, int pad, int padded) {
    const int inputs = batch * height * width, item = gid % padded, q = min(item, inputs - 1);
    const int ci0 = gid / padded * CT;
    const int ix = q % width, iy = q / width % height, n = q / (width * height);
    float acc[CT];
    for (int t = 0; t < CT; ++t) acc[t] = 0.0f;
    const int group_in = in_channels / GROUPS;
#if GROUPS > 1
    const int ci_base = ci0 / group_in * group_in, co_begin = ci0 / group_in * (out_channels / GROUPS);
    const int co_end = co_begin + out_channels / GROUPS;
#else
    const int ci_base = 0, co_begin = 0, co_end = out_channels;
#endif
#pragma unroll 1
    for (int co = co_begin; co < co_end; ++co) {
        const long plane = (long)(co * batch + n) * out_height * out_width;
#pragma unroll 1
        for (int ky = 0; ky < KS; ++ky) {
            const int ty = iy + pad - ky * DIL;
            for (int kx = 0; kx < KS; ++kx) {
                const int tx = ix + pad - kx * DIL;
                const bool hit = ty >= 0 && tx >= 0 && ty % ST == 0 && tx % ST == 0 && ty / ST < out_height &&
                                 tx / ST < out_width;
                const float g = hit ? gradient_at(dy, z, plane + ty / ST * out_width + tx / ST, co, bn, normalized, slope) : 0.0f;
                for (int t = 0; t < CT; ++t)
                    acc[t] += w[(((long)co * group_in + min(ci0 + t, in_channels - 1) - ci_base) * KS + ky) * KS + kx] * g;
            }
        }
    }
    if (item >= inputs) return;
    for (int t = 0; t < CT && ci0 + t < in_channels; ++t) {
#if ACC
        dx[(long)(ci0 + t) * inputs + q] += acc[t];
#else
        dx[(long)(ci0 + t) * inputs + q] = acc[t];
#endif
    }
}

// The input gradient, item `gid`: for ST = 1 a convolution of dy with the window turned by 180°, input
// and output channels swapped and padding (KS - 1)·DIL - pad (row tiles); a larger stride leaves holes,
// so it gathers per pixel.
__attribute__((always_inline)) void input_gradient(
        int gid, __global const float* dy, __global const float* z, __local const float* bn, const bool normalized,
        float slope, __global const float* w, __global float* dx, int in_channels, int batch, int height, int width,
        int out_channels, int out_height, int out_width, int pad, int padded) {
#if ST == 1
    const RowItem r = row_item(gid, padded, batch, height, width);
    float acc[CT][OXT];
    conv_sums(dy, z, bn, normalized, slope, w, out_channels, batch, out_height, out_width, in_channels, (KS - 1) * DIL - pad,
              r.t0, r.n, r.oy, r.ox0, KS * KS, in_channels / GROUPS * KS * KS, true, acc);
    store_rows(dx, acc, r, batch, in_channels, height, width, ACC);
#else
    strided_input_gradient(gid, dy, z, bn, normalized, slope, w, dx, in_channels, batch, height, width, out_channels,
                           out_height, out_width, pad, padded);
#endif
}

// The two gradients apart, for a CPU device: stage 1 of the weight gradient, into partials from its offset.
__kernel void conv_backward_weights(__global const float* x, __global const float* dy, __global float* partials,
                                    int partials_offset, int in_channels, int batch, int height, int width,
                                    int out_channels, int out_height, int out_width, int pad, int bias_sums, int parts) {
    weight_sums(get_global_id(0), x, dy, 0, 0, false, 0, partials + partials_offset, in_channels, batch, height, width,
                out_channels, out_height, out_width, pad, bias_sums, parts);
}

__kernel void conv_backward_data(__global const float* dy, __global const float* w, __global float* dx, int in_channels,
                                 int batch, int height, int width, int out_channels, int out_height, int out_width,
                                 int pad, int padded) {
    input_gradient(get_global_id(0), dy, 0, 0, false, 0, w, dx, in_channels, batch, height, width, out_channels,
                   out_height, out_width, pad, padded);
}

// Both gradients in one launch, for a GPU: the first `weight_items` items run stage 1 of the weight
// gradient (weight_sums, into partials), the rest the input gradient (none when dx is null).
// `partials` and `sums` start at their offsets (regions of the device's gradient arena). With BNC > 0,
// dy is the gradient of the batch norm after this convolution and z its input (this convolution's
// output), and every dy read goes through gradient_at.
__kernel void conv_backward(__global const float* x, __global const float* dy, __global const float* w,
                            __global float* partials, int partials_offset, __global float* dx, int in_channels, int batch, int height,
                            int width, int out_channels, int out_height, int out_width, int pad, int bias_sums,
                            int parts, int weight_items, int padded, __global const float* z,
                            __global const float* sums, int sums_offset, int slices, __global const float* gamma,
                            __global const float* saved_mean, __global const float* saved_inv_std, float slope) {
    partials += partials_offset;
#if BNC > 0
    sums += sums_offset;
    __local float bn[BN_VALUES * BNC];
    batch_norm_prologue(sums, slices, batch * out_height * out_width, gamma, saved_mean, saved_inv_std, bn);
    const bool normalized = true;
#else
    __local const float* bn = 0;
    const bool normalized = false;
    (void)sums; (void)sums_offset; (void)slices; (void)gamma; (void)saved_mean; (void)saved_inv_std;
#endif
    const int gid = get_global_id(0);
    if (gid < weight_items)  // the same for a whole work-group: weight_items is a multiple of its size
        weight_sums(gid, x, dy, z, bn, normalized, slope, partials, in_channels, batch, height, width, out_channels,
                    out_height, out_width, pad, bias_sums, parts);
    else
        input_gradient(gid - weight_items, dy, z, bn, normalized, slope, w, dx, in_channels, batch, height, width,
                       out_channels, out_height, out_width, pad, padded);
}
