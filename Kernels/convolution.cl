// Direct convolution (see OpenCLConvolution.swift): every work-item computes its outputs from the
// activation itself, so no column matrix is written or read. Activations are [C, N, H, W], weights
// [Co, Ci, k, k]. This file is built apart from the others, once per layer shape, specialised with:
//   KS, ST    the window's size and stride;
//   OXT, CT   a work-item's outputs: OXT neighbours along a row times CT channels.
// An item keeps its OXT·CT sums in registers and reads each input row segment once for all of them,
// so the sums outnumber the loads; OpenCLConvolution.swift picks OXT and CT per layer so that a GPU
// still sees hundreds of work-groups. Items past the end compute on a clamped index and write
// nothing: no early return, so loops run the same trip count in every item of a group.
#ifndef KS
#define KS 3
#endif
#ifndef ST
#define ST 1
#endif
#ifndef OXT
#define OXT 4
#endif
#ifndef CT
#define CT 8
#endif
// Input columns under OXT neighbouring windows of a row.
#define SPAN ((OXT - 1) * ST + KS)

// out[t][n, oy, ox] = sum over c, a, b of W(t, c, a, b) * in[c][n][oy*ST - pad + a][ox*ST - pad + b], zero
// outside the image, plus bias[t] when bias is not null, for an item's OXT outputs of one row and CT
// output channels. W(t, c, a, b) is
// w[t*t_stride + c*c_stride + a*KS + b], or with `flip` the window turned by 180°: the transposed
// convolution is then the same loop. A launch covers the channel tiles one after the other, `padded`
// items each (whole work-groups, so a group reads one tile's weights throughout).
__attribute__((always_inline)) void conv_rows(__global const float* in, __global const float* w, __global const float* bias,
                                              __global float* out, int channels, int batch,
               int height, int width, int out_channels, int out_height, int out_width, int pad, int padded,
               int t_stride, int c_stride, const bool flip) {
    const int segments = (out_width + OXT - 1) / OXT, items = batch * out_height * segments;
    const int item = get_global_id(0) % padded, i = min(item, items - 1);
    const int t0 = get_global_id(0) / padded * CT;
    const int ox0 = i % segments * OXT, oy = i / segments % out_height, n = i / (segments * out_height);
    float acc[CT][OXT];
    for (int t = 0; t < CT; ++t)
        for (int o = 0; o < OXT; ++o) acc[t][o] = 0.0f;
    for (int c = 0; c < channels; ++c) {
        __global const float* plane = in + (long)(c * batch + n) * height * width;
        // One window row at a time: unrolled, the compiler would load every row's inputs and weights
        // up front and run out of registers on a GPU.
#pragma unroll 1
        for (int a = 0; a < KS; ++a) {
            const int iy = oy * ST - pad + a;
            const bool row_inside = iy >= 0 && iy < height;
            float row[SPAN];
            for (int j = 0; j < SPAN; ++j) {
                const int ix = ox0 * ST - pad + j;
                row[j] = row_inside && ix >= 0 && ix < width ? plane[iy * width + ix] : 0.0f;
            }
            for (int t = 0; t < CT; ++t) {
                // Channels past the last read the last one's weights and are never written.
                __global const float* wt = w + (long)min(t0 + t, out_channels - 1) * t_stride + (long)c * c_stride;
                for (int b = 0; b < KS; ++b) {
                    const float wv = flip ? wt[(KS - 1 - a) * KS + KS - 1 - b] : wt[a * KS + b];
                    for (int o = 0; o < OXT; ++o) acc[t][o] += wv * row[o * ST + b];
                }
            }
        }
    }
    if (item >= items) return;
    const long pixels = (long)batch * out_height * out_width;
    for (int t = 0; t < CT && t0 + t < out_channels; ++t) {
        const float b = bias ? bias[t0 + t] : 0.0f;
        for (int o = 0; o < OXT; ++o)
            if (ox0 + o < out_width) out[(t0 + t) * pixels + (n * out_height + oy) * out_width + ox0 + o] = acc[t][o] + b;
    }
}

// y = conv(x, w) + bias (bias may be null): output channels in tiles of CT.
__kernel void conv_forward(__global const float* x, __global const float* w, __global const float* bias,
                           __global float* y, int in_channels,
                           int batch, int height, int width, int out_channels, int out_height, int out_width,
                           int pad, int padded) {
    conv_rows(x, w, bias, y, in_channels, batch, height, width, out_channels, out_height, out_width, pad, padded,
              in_channels * KS * KS, KS * KS, false);
}

// dx = conv_transpose(dy, w) for stride 1: a convolution of dy with the window turned by 180°, input and
// output channels swapped, and padding KS - 1 - pad. Input channels in tiles of CT.
__kernel void conv_backward_data(__global const float* dy, __global const float* w, __global float* dx,
                                 int in_channels, int batch, int height, int width, int out_channels,
                                 int out_height, int out_width, int pad, int padded) {
    conv_rows(dy, w, 0, dx, out_channels, batch, out_height, out_width, in_channels, height, width, KS - 1 - pad, padded,
              KS * KS, in_channels * KS * KS, true);
}

// dx for ST > 1, as a gather: each input pixel sums w * dy over the windows that cover it (most taps
// miss the stride's grid). One item per input pixel and CT input channels.
__kernel void conv_backward_data_strided(__global const float* dy, __global const float* w, __global float* dx,
                                         int in_channels, int batch, int height, int width, int out_channels,
                                         int out_height, int out_width, int pad, int padded) {
    const int inputs = batch * height * width, item = get_global_id(0) % padded, q = min(item, inputs - 1);
    const int ci0 = get_global_id(0) / padded * CT;
    const int ix = q % width, iy = q / width % height, n = q / (width * height);
    float acc[CT];
    for (int t = 0; t < CT; ++t) acc[t] = 0.0f;
#pragma unroll 1
    for (int co = 0; co < out_channels; ++co) {
        __global const float* plane = dy + (long)(co * batch + n) * out_height * out_width;
#pragma unroll 1
        for (int ky = 0; ky < KS; ++ky) {
            const int ty = iy + pad - ky;
            for (int kx = 0; kx < KS; ++kx) {
                const int tx = ix + pad - kx;
                const bool hit = ty >= 0 && tx >= 0 && ty % ST == 0 && tx % ST == 0 && ty / ST < out_height &&
                                 tx / ST < out_width;
                const float g = hit ? plane[ty / ST * out_width + tx / ST] : 0.0f;
                for (int t = 0; t < CT; ++t)
                    acc[t] += w[(((long)co * in_channels + min(ci0 + t, in_channels - 1)) * KS + ky) * KS + kx] * g;
            }
        }
    }
    if (item >= inputs) return;
    for (int t = 0; t < CT && ci0 + t < in_channels; ++t) dx[(long)(ci0 + t) * inputs + q] = acc[t];
}

// Window rows per work-item of conv_backward_weights: KS, or 1 where a small layer needs more items.
#ifndef KY
#define KY KS
#endif

// Stage 1 of the weight gradient dw[co, ci, ky, kx] = sum over the batch's output pixels p of
// dy[co][p] * x[ci][window of p]: a sum of N·OH·OW terms into few outputs, so it is split. Item (j, u)
// sums pixels u, u + parts, u + 2·parts, … for one j = (tile of CT output channels, ci, KY window rows):
// CT·KY·KS sums, written to partials[u][co, ci, ky, kx]. With `bias_sums`, the items of ci = 0 and the
// first window rows also sum dy itself, the bias gradient, into partials[u][weights + co]. `parts` is
// a multiple of the work-group size, so a group shares j and its items read neighbouring pixels
// (contiguous loads). Stage 2 is sum_parts over u, in a fixed order.
__kernel void conv_backward_weights(__global const float* x, __global const float* dy, __global float* partials,
                                    int in_channels, int batch, int height, int width, int out_channels,
                                    int out_height, int out_width, int pad, int bias_sums, int parts) {
    const int u = get_global_id(0) % parts, j = get_global_id(0) / parts;
    const int ky0 = j % (KS / KY) * KY, ci = j / (KS / KY) % in_channels, co0 = j / (KS / KY * in_channels) * CT;
    const int pixels = batch * out_height * out_width;
    // The pixel (n, oy, ox) advances by `parts` each round: by (dn, dy, dx) with carries, no division.
    const int step_x = parts % out_width, step_y = parts / out_width % out_height, step_n = parts / (out_width * out_height);
    int ox = u % out_width, oy = u / out_width % out_height, n = u / (out_width * out_height);
    const bool sums_bias = bias_sums && ci == 0 && ky0 == 0;  // the same for a whole work-group
    float acc[CT][KY * KS], bias_acc[CT];
    for (int t = 0; t < CT; ++t) {
        bias_acc[t] = 0.0f;
        for (int b = 0; b < KY * KS; ++b) acc[t][b] = 0.0f;
    }
    // Not unrolled: a copy of the body per unrolled round would double the registers it needs.
#pragma unroll 1
    for (int p0 = 0; p0 < pixels; p0 += parts) {
        // The last round's items past the end read a clamped pixel and add nothing.
        const bool live = p0 + u < pixels;
        const int p = live ? p0 + u : pixels - 1, n_read = live ? n : batch - 1;
        float g[CT];
        for (int t = 0; t < CT; ++t) g[t] = live ? dy[(long)min(co0 + t, out_channels - 1) * pixels + p] : 0.0f;
        if (sums_bias)
            for (int t = 0; t < CT; ++t) bias_acc[t] += g[t];
        __global const float* plane = x + (long)(ci * batch + n_read) * height * width;
        for (int a = 0; a < KY; ++a) {
            const int iy = oy * ST - pad + ky0 + a;
            for (int b = 0; b < KS; ++b) {
                const int ix = ox * ST - pad + b;
                const float v = live && iy >= 0 && iy < height && ix >= 0 && ix < width ? plane[iy * width + ix] : 0.0f;
                for (int t = 0; t < CT; ++t) acc[t][a * KS + b] += g[t] * v;
            }
        }
        ox += step_x;
        if (ox >= out_width) { ox -= out_width; ++oy; }
        oy += step_y;
        if (oy >= out_height) { oy -= out_height; ++n; }
        n += step_n;
    }
    const long weights = (long)out_channels * in_channels * KS * KS, row = weights + (bias_sums ? out_channels : 0);
    for (int t = 0; t < CT && co0 + t < out_channels; ++t) {
        for (int a = 0; a < KY; ++a)
            for (int b = 0; b < KS; ++b)
                partials[u * row + (((long)(co0 + t) * in_channels + ci) * KS + ky0 + a) * KS + b] = acc[t][a * KS + b];
        if (sums_bias) partials[u * row + weights + co0 + t] = bias_acc[t];
    }
}
