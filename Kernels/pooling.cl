// Max and average pooling on (c, n) planes, floor mode. Backward passes are gathers, one work-item
// per input element summing over the windows that hold it in output order: the CPU scatters in the
// same order, so the sums agree bit for bit, and no two work-items write one element.

// The outputs (along one axis) whose window holds input position `at`.
int first_window(int at, int kernel_size, int stride, int pad) {
    const int from = at + pad - kernel_size + 1;
    return from <= 0 ? 0 : (from + stride - 1) / stride;
}
int last_window(int at, int stride, int pad, int out_size) { return min(out_size - 1, (at + pad) / stride); }

__kernel void max_pool_forward(__global const float* x, __global float* y, __global int* argmax, int planes,
                               int height, int width, int out_height, int out_width, int kernel_size,
                               int stride, int pad) {
    const int i = get_global_id(0);
    if (i >= planes * out_height * out_width) return;
    const int ox = i % out_width, oy = i / out_width % out_height, plane = i / (out_width * out_height);
    __global const float* xp = x + (long)plane * height * width;
    float best = -INFINITY;
    int at = -1;
    for (int ky = max(0, pad - oy * stride); ky < min(kernel_size, height + pad - oy * stride); ++ky) {
        const int iy = oy * stride - pad + ky;
        for (int kx = max(0, pad - ox * stride); kx < min(kernel_size, width + pad - ox * stride); ++kx) {
            const int ix = ox * stride - pad + kx;
            const float v = xp[iy * width + ix];
            // A later element wins unless it is <= best, so a NaN wins, as in PyTorch and on the CPU.
            if (at < 0 || !(v <= best)) { best = v; at = iy * width + ix; }
        }
    }
    y[i] = best;
    argmax[i] = at;
}

// dx[j] = sum of dy[o] over the windows o whose winner is j.
__kernel void max_pool_backward(__global const float* dy, __global const int* argmax, __global float* dx, int planes,
                                int height, int width, int out_height, int out_width, int kernel_size, int stride,
                                int pad) {
    const int i = get_global_id(0);
    if (i >= planes * height * width) return;
    const int ix = i % width, iy = i / width % height, plane = i / (width * height);
    const long base = (long)plane * out_height * out_width;
    const int me = iy * width + ix;
    float sum = 0.0f;
    for (int oy = first_window(iy, kernel_size, stride, pad); oy <= last_window(iy, stride, pad, out_height); ++oy)
        for (int ox = first_window(ix, kernel_size, stride, pad); ox <= last_window(ix, stride, pad, out_width); ++ox) {
            const long o = base + oy * out_width + ox;
            if (argmax[o] == me) sum += dy[o];
        }
    dx[i] = sum;
}

// Max pool backward where the windows tile the plane (stride = kernel, no padding), so each input
// element lies in at most one window: one work-item per window writes every element of it, the
// winner's gradient or 0, and the last row and column of windows also clear the elements that floor
// mode left outside every window. Cheaper than the general gather on CPUs, and as coalesced.
__kernel void max_pool_backward_tiled(__global const float* dy, __global const int* argmax, __global float* dx,
                                      int planes, int height, int width, int out_height, int out_width,
                                      int kernel_size) {
    const int o = get_global_id(0);
    if (o >= planes * out_height * out_width) return;
    const int ox = o % out_width, oy = o / out_width % out_height, plane = o / (out_width * out_height);
    __global float* dxp = dx + (long)plane * height * width;
    const int winner = argmax[o];
    const float g = 0.0f + dy[o];  // -0 becomes +0, as the CPU's sum from 0 makes it
    const int y_end = oy == out_height - 1 ? height : (oy + 1) * kernel_size;
    const int x_end = ox == out_width - 1 ? width : (ox + 1) * kernel_size;
    for (int iy = oy * kernel_size; iy < y_end; ++iy)
        for (int ix = ox * kernel_size; ix < x_end; ++ix) dxp[iy * width + ix] = iy * width + ix == winner ? g : 0.0f;
}

// Average over the window, padding counted (PyTorch's count_include_pad default), one work-item per
// output: for windows small against the plane, where outputs are many.
__kernel void avg_pool_forward(__global const float* x, __global float* y, int planes, int height, int width,
                               int out_height, int out_width, int kernel_size, int stride, int pad) {
    const int i = get_global_id(0);
    if (i >= planes * out_height * out_width) return;
    const int ox = i % out_width, oy = i / out_width % out_height, plane = i / (out_width * out_height);
    __global const float* xp = x + (long)plane * height * width;
    float total = 0.0f;
    for (int iy = max(0, oy * stride - pad); iy < min(height, oy * stride - pad + kernel_size); ++iy)
        for (int ix = max(0, ox * stride - pad); ix < min(width, ox * stride - pad + kernel_size); ++ix)
            total += xp[iy * width + ix];
    y[i] = total * (1.0f / (float)(kernel_size * kernel_size));
}

// The same average, one work-group per output (global average pooling and other wide windows, where
// outputs are few): item t sums window elements t, t + size, … (row-major within the window), then
// the group adds its items in a fixed tree. The local size is a power of two up to 64.
__kernel void avg_pool_forward_wide(__global const float* x, __global float* y, int height, int width,
                                    int out_height, int out_width, int kernel_size, int stride, int pad) {
    __local float scratch[64];
    const int o = get_group_id(0), t = get_local_id(0), size = get_local_size(0);
    const int ox = o % out_width, oy = o / out_width % out_height, plane = o / (out_width * out_height);
    __global const float* xp = x + (long)plane * height * width;
    float total = 0.0f;
    for (int k = t; k < kernel_size * kernel_size; k += size) {
        const int iy = oy * stride - pad + k / kernel_size, ix = ox * stride - pad + k % kernel_size;
        if (iy >= 0 && iy < height && ix >= 0 && ix < width) total += xp[iy * width + ix];
    }
    scratch[t] = total;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int span = size / 2; span > 0; span >>= 1) {
        if (t < span) scratch[t] += scratch[t + span];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (t == 0) y[o] = scratch[0] * (1.0f / (float)(kernel_size * kernel_size));
}

// dx[j] = sum of dy[o] / area over the windows o that hold j.
__kernel void avg_pool_backward(__global const float* dy, __global float* dx, int planes, int height, int width,
                                int out_height, int out_width, int kernel_size, int stride, int pad) {
    const int i = get_global_id(0);
    if (i >= planes * height * width) return;
    const int ix = i % width, iy = i / width % height, plane = i / (width * height);
    __global const float* dyp = dy + (long)plane * out_height * out_width;
    const float inverse_area = 1.0f / (float)(kernel_size * kernel_size);
    float sum = 0.0f;
    for (int oy = first_window(iy, kernel_size, stride, pad); oy <= last_window(iy, stride, pad, out_height); ++oy)
        for (int ox = first_window(ix, kernel_size, stride, pad); ox <= last_window(ix, stride, pad, out_width); ++ox)
            sum += dyp[oy * out_width + ox] * inverse_area;
    dx[i] = sum;
}
