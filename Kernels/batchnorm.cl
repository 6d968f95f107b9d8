// Batch norm over rows of N*H*W per channel: one work-group per channel for the statistics.
// rectify != 0 normalises max(x, 0) and zeroes the input gradient where x <= 0: a ReLU folded in.

// x, or max(x, 0) when rectifying (a NaN stays NaN, as in relu_forward).
#define RECTIFIED(v) (rectify && (v) < 0.0f ? 0.0f : (v))

REDUCTION_KERNEL void batch_norm_training_forward(
        __global const float* x, __global const float* gamma, __global const float* beta,
        __global float* running_mean, __global float* running_var, __global float* saved_mean,
        __global float* saved_inv_std, __global float* y, int row, float momentum, float epsilon, int rectify) {
    __local float scratch[REDUCE_GROUP];
    const int c = get_group_id(0), lid = get_local_id(0);
    __global const float* xc = x + (long)c * row;
    __global float* yc = y + (long)c * row;
    float s = 0.0f;
    for (int i = lid; i < row; i += REDUCE_GROUP) s += RECTIFIED(xc[i]);
    const float mean = group_sum(s, scratch) / (float)row;
    // Squared deviations from the mean (two passes): stable where E[x^2] - E[x]^2 is not.
    float q = 0.0f;
    for (int i = lid; i < row; i += REDUCE_GROUP) { const float d = RECTIFIED(xc[i]) - mean; q += d * d; }
    const float variance = group_sum(q, scratch) / (float)row;
    const float inv_std = 1.0f / sqrt(variance + epsilon);
    const float scale = gamma[c] * inv_std, shift = beta[c] - mean * scale;
    for (int i = lid; i < row; i += REDUCE_GROUP) yc[i] = RECTIFIED(xc[i]) * scale + shift;
    if (lid == 0) {
        saved_mean[c] = mean;
        saved_inv_std[c] = inv_std;
        const float unbiased = row > 1 ? variance * (float)row / (float)(row - 1) : variance;
        running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * mean;
        running_var[c] = (1.0f - momentum) * running_var[c] + momentum * unbiased;
    }
}

__kernel void batch_norm_inference_forward(
        __global const float* x, __global const float* gamma, __global const float* beta,
        __global const float* running_mean, __global const float* running_var, __global float* y,
        int row, int count, float epsilon, int rectify) {
    const int i = get_global_id(0);
    if (i >= count) return;
    const int c = i / row;
    const float scale = gamma[c] / sqrt(running_var[c] + epsilon), shift = beta[c] - running_mean[c] * scale;
    y[i] = RECTIFIED(x[i]) * scale + shift;
}

// dx = gamma/sigma * (dy - mean(dy) - xhat * mean(dy * xhat)); dgamma = sum(dy * xhat); dbeta = sum(dy).
REDUCTION_KERNEL void batch_norm_backward(
        __global const float* x, __global const float* dy, __global const float* gamma,
        __global const float* saved_mean, __global const float* saved_inv_std, __global float* dx,
        __global float* dgamma, __global float* dbeta, int row, int rectify) {
    __local float scratch[REDUCE_GROUP];
    const int c = get_group_id(0), lid = get_local_id(0);
    __global const float* xc = x + (long)c * row;
    __global const float* dyc = dy + (long)c * row;
    __global float* dxc = dx + (long)c * row;
    const float mean = saved_mean[c], inv_std = saved_inv_std[c];
    float s = 0.0f, t = 0.0f;
    for (int i = lid; i < row; i += REDUCE_GROUP) { s += dyc[i]; t += dyc[i] * (RECTIFIED(xc[i]) - mean); }
    const float sum_dy = group_sum(s, scratch);
    const float sum_dy_xhat = group_sum(t, scratch) * inv_std;
    if (lid == 0) { dbeta[c] = sum_dy; dgamma[c] = sum_dy_xhat; }
    const float k = gamma[c] * inv_std, mean_dy = sum_dy / (float)row, mean_dy_xhat = sum_dy_xhat / (float)row;
    for (int i = lid; i < row; i += REDUCE_GROUP) {
        const float xhat = (RECTIFIED(xc[i]) - mean) * inv_std;
        const float d = k * (dyc[i] - mean_dy - xhat * mean_dy_xhat);
        dxc[i] = rectify && !(xc[i] > 0.0f) ? 0.0f : d;
    }
}
