// Convolution helpers around CLBlast's sgemm (see OpenCLConvolution.swift for the call order).
// Activations are [C, N, H, W]; a column matrix is [Ci*k*k, N*OH*OW], row (ci*k + ky)*k + kx.

// col[row][n, oy, ox] = x[ci][n][oy*s - pad + ky][ox*s - pad + kx], 0 outside the image.
__kernel void im2col(__global const float* x, __global float* col, int channels, int batch, int height,
                     int width, int out_height, int out_width, int kernel_size, int stride, int pad) {
    const int i = get_global_id(0);
    const int columns = batch * out_height * out_width;
    if (i >= channels * kernel_size * kernel_size * columns) return;
    const int row = i / columns, column = i % columns;
    const int ci = row / (kernel_size * kernel_size), kx = row % kernel_size, ky = row / kernel_size % kernel_size;
    const int n = column / (out_height * out_width), ox = column % out_width, oy = column / out_width % out_height;
    const int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
    const bool inside = iy >= 0 && iy < height && ix >= 0 && ix < width;
    col[i] = inside ? x[((ci * batch + n) * height + iy) * width + ix] : 0.0f;
}

// The adjoint of im2col, as a gather: each input element sums the column entries that read it, in
// (ky, kx) order. No two work-items write the same element, so no atomics are needed.
__kernel void col2im(__global const float* col, __global float* dx, int channels, int batch, int height,
                     int width, int out_height, int out_width, int kernel_size, int stride, int pad) {
    const int i = get_global_id(0);
    if (i >= channels * batch * height * width) return;
    const int ix = i % width, iy = i / width % height, n = i / (width * height) % batch;
    const int ci = i / (width * height * batch);
    const int columns = batch * out_height * out_width;
    float sum = 0.0f;
    for (int ky = 0; ky < kernel_size; ++ky) {
        const int ty = iy + pad - ky;
        if (ty < 0 || ty % stride != 0 || ty / stride >= out_height) continue;
        for (int kx = 0; kx < kernel_size; ++kx) {
            const int tx = ix + pad - kx;
            if (tx < 0 || tx % stride != 0 || tx / stride >= out_width) continue;
            const int row = (ci * kernel_size + ky) * kernel_size + kx;
            sum += col[row * columns + (n * out_height + ty / stride) * out_width + tx / stride];
        }
    }
    dx[i] = sum;
}

// x[c, ...] += bias[c], rows of `row` elements.
__kernel void add_channel_bias(__global float* x, __global const float* bias, int row, int count) {
    const int i = get_global_id(0);
    if (i < count) x[i] += bias[i / row];
}

// sums[c] = sum of row c, in two stages as batch norm's (see batchnorm.cl): first one work-group per
// (channel, slice) of the row, then sum_parts.
__kernel void slice_sums(__global const float* x, __global float* partials, int row, int slice, int slices) {
    __local float scratch[REDUCE_GROUP];
    const int group = get_group_id(0);
    __global const float* xc = x + (long)(group / slices) * row;
    const int begin = group % slices * slice, end = min(begin + slice, row);
    float s = 0.0f;
    for (int i = begin + get_local_id(0); i < end; i += REDUCE_GROUP) s += xc[i];
    s = group_sum(s, scratch);
    if (get_local_id(0) == 0) partials[group] = s;
}

// out[o] = sum over p < parts of partials[o * output_stride + p * part_stride]: the second stage of a
// split reduction (slice sums, split-K weight gradients). One work-group per output, its items taking
// parts t, t + size, …, then a fixed tree; the local size is a power of two up to 64.
__kernel void sum_parts(__global const float* partials, __global float* out, int parts, int output_stride,
                        int part_stride) {
    __local float scratch[64];
    const int o = get_group_id(0), t = get_local_id(0), size = get_local_size(0);
    float s = 0.0f;
    for (int p = t; p < parts; p += size) s += partials[(long)o * output_stride + (long)p * part_stride];
    scratch[t] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int span = size / 2; span > 0; span >>= 1) {
        if (t < span) scratch[t] += scratch[t + span];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (t == 0) out[o] = scratch[0];
}
