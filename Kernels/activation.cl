// Element-wise ops and the flatten permutation; one work-item per element.

__kernel void activation_forward(__global const float* x, __global float* y, float slope, int count) {
    const int i = get_global_id(0);
    if (i < count) y[i] = ACTIVATED(x[i]);  // NaN passes through, as on the CPU
}

__kernel void activation_backward(__global const float* y, __global const float* dy, __global float* dx, float slope,
                                  int count) {
    const int i = get_global_id(0);
    if (i < count) dx[i] = ACTIVATION_GRADIENT(y[i], dy[i]);
}

__kernel void multiply(__global const float* a, __global const float* b, __global float* c, int count) {
    const int i = get_global_id(0);
    if (i < count) c[i] = a[i] * b[i];
}

__kernel void add(__global const float* a, __global const float* b, __global float* c, int count) {
    const int i = get_global_id(0);
    if (i < count) c[i] = a[i] + b[i];
}

// Between [C, N, H*W] and [C*H*W, N]: element (c, n, p) <-> feature (c*H*W + p, n).
__kernel void flatten(__global const float* src, __global float* dst, int channels, int batch, int plane,
                      int to_features) {
    const int i = get_global_id(0);
    if (i >= channels * batch * plane) return;
    const int p = i % plane, n = i / plane % batch, c = i / (plane * batch);
    const int feature = (c * plane + p) * batch + n;
    if (to_features) dst[feature] = src[i]; else dst[i] = src[feature];
}
