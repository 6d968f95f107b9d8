// Max and average pooling on (c, n) planes, floor mode. Backward runs one work-item per plane and
// scatters in output order, as the CPU does: race-free, and the same sums in the same order.

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

__kernel void max_pool_backward(__global const float* dy, __global const int* argmax, __global float* dx,
                                int planes, int plane_in, int plane_out) {
    const int plane = get_global_id(0);
    if (plane >= planes) return;
    __global float* dxp = dx + (long)plane * plane_in;
    __global const float* dyp = dy + (long)plane * plane_out;
    __global const int* ip = argmax + (long)plane * plane_out;
    for (int j = 0; j < plane_in; ++j) dxp[j] = 0.0f;
    for (int o = 0; o < plane_out; ++o) dxp[ip[o]] += dyp[o];
}

// Average over the window, padding counted (PyTorch's count_include_pad default).
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

__kernel void avg_pool_backward(__global const float* dy, __global float* dx, int planes, int height, int width,
                                int out_height, int out_width, int kernel_size, int stride, int pad) {
    const int plane = get_global_id(0);
    if (plane >= planes) return;
    __global float* dxp = dx + (long)plane * height * width;
    __global const float* dyp = dy + (long)plane * out_height * out_width;
    const float inverse_area = 1.0f / (float)(kernel_size * kernel_size);
    for (int j = 0; j < height * width; ++j) dxp[j] = 0.0f;
    for (int oy = 0; oy < out_height; ++oy)
        for (int ox = 0; ox < out_width; ++ox) {
            const float g = dyp[oy * out_width + ox] * inverse_area;
            for (int iy = max(0, oy * stride - pad); iy < min(height, oy * stride - pad + kernel_size); ++iy)
                for (int ix = max(0, ox * stride - pad); ix < min(width, ox * stride - pad + kernel_size); ++ix)
                    dxp[iy * width + ix] += g;
        }
}
