// Batch norm over rows of N*H*W per channel, in two stages so that a GPU sees hundreds of work-groups:
// stage 1 runs one work-group per (channel, slice) of the row and writes that slice's partial
// statistics; stage 2 runs element-wise, and each of its work-groups first folds its channel's
// partials in slice order (the same fold in every group, so every group gets the same numbers, and
// every run too). Slices are `slice` elements long (the last may be shorter); see OpenCLBatchNorm.swift.
// rectify != 0 normalises max(x, 0) and zeroes the input gradient where x <= 0: a ReLU folded in.

// x, or max(x, 0) when rectifying (a NaN stays NaN, as in relu_forward).
#define RECTIFIED(v) (rectify && (v) < 0.0f ? 0.0f : (v))

// Stage 1 of the batch statistics: the slice's mean and sum of squared deviations from it (two
// passes over the slice: stable where E[x^2] - E[x]^2 is not).
__kernel void batch_norm_statistics(__global const float* x, __global float* partials, int row, int slice,
                                    int slices, int rectify) {
    __local float scratch[REDUCE_GROUP];
    const int group = get_group_id(0), lid = get_local_id(0);
    __global const float* xc = x + (long)(group / slices) * row;
    const int begin = group % slices * slice, end = min(begin + slice, row);
    float s = 0.0f;
    for (int i = begin + lid; i < end; i += REDUCE_GROUP) s += RECTIFIED(xc[i]);
    const float mean = group_sum(s, scratch) / (float)(end - begin);
    float q = 0.0f;
    for (int i = begin + lid; i < end; i += REDUCE_GROUP) { const float d = RECTIFIED(xc[i]) - mean; q += d * d; }
    q = group_sum(q, scratch);
    if (lid == 0) { partials[2 * group] = mean; partials[2 * group + 1] = q; }
}

// Mean and (biased) variance of channel c from its slices' partials, folded in slice order with
// Chan, Golub and LeVeque's pairwise update.
float2 folded_statistics(__global const float* partials, int c, int row, int slice, int slices) {
    float n = 0.0f, mean = 0.0f, m2 = 0.0f;
    for (int s = 0; s < slices; ++s) {
        const float count = (float)min(slice, row - s * slice), total = n + count;
        const float delta = partials[2 * (c * slices + s)] - mean;
        mean += delta * (count / total);
        m2 += partials[2 * (c * slices + s) + 1] + delta * delta * (n * count / total);
        n = total;
    }
    return (float2)(mean, m2 / (float)row);
}

// Stage 2 work-groups each cover `per_item` * local size elements of one channel's row (see
// OpenCLDevice.runRows): the row's first element, and the channel, of this work-group.
int group_row_start(int row, int per_item) {
    const int span = (int)get_local_size(0) * per_item, groups_per_row = (row + span - 1) / span;
    return get_group_id(0) % groups_per_row * span;
}
int group_channel(int row, int per_item) {
    const int span = (int)get_local_size(0) * per_item;
    return get_group_id(0) / ((row + span - 1) / span);
}

// Stage 2: y = (x - mean) / sigma * gamma + beta. The first group of each channel saves mean and
// 1/sigma for backward and updates the running statistics as PyTorch does (momentum, unbiased variance).
__kernel void batch_norm_normalize(
        __global const float* x, __global const float* partials, __global const float* gamma,
        __global const float* beta, __global float* running_mean, __global float* running_var,
        __global float* saved_mean, __global float* saved_inv_std, __global float* y, int row, int per_item,
        int slice, int slices, float momentum, float epsilon, int rectify) {
    __local float statistics[2];
    const int c = group_channel(row, per_item), start = group_row_start(row, per_item);
    if (get_local_id(0) == 0) {
        const float2 s = folded_statistics(partials, c, row, slice, slices);
        statistics[0] = s.x;
        statistics[1] = s.y;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    const float mean = statistics[0], variance = statistics[1];
    const float inv_std = 1.0f / sqrt(variance + epsilon);
    const float scale = gamma[c] * inv_std, shift = beta[c] - mean * scale;
    __global const float* xc = x + (long)c * row;
    __global float* yc = y + (long)c * row;
    for (int k = 0, i = start + get_local_id(0); k < per_item && i < row; ++k, i += get_local_size(0))
        yc[i] = RECTIFIED(xc[i]) * scale + shift;
    if (start + get_local_id(0) == 0) {
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

// Backward stage 1: per slice, sum(dy) and sum(dy * (x - mean)).
__kernel void batch_norm_backward_sums(__global const float* x, __global const float* dy,
                                       __global const float* saved_mean, __global float* partials, int row,
                                       int slice, int slices, int rectify) {
    __local float scratch[REDUCE_GROUP];
    const int group = get_group_id(0), c = group / slices, lid = get_local_id(0);
    __global const float* xc = x + (long)c * row;
    __global const float* dyc = dy + (long)c * row;
    const int begin = group % slices * slice, end = min(begin + slice, row);
    const float mean = saved_mean[c];
    float s = 0.0f, t = 0.0f;
    for (int i = begin + lid; i < end; i += REDUCE_GROUP) { s += dyc[i]; t += dyc[i] * (RECTIFIED(xc[i]) - mean); }
    s = group_sum(s, scratch);
    t = group_sum(t, scratch);
    if (lid == 0) { partials[2 * group] = s; partials[2 * group + 1] = t; }
}

// Backward stage 2: dx = gamma/sigma * (dy - mean(dy) - xhat * mean(dy * xhat)); the first group of
// each channel writes dgamma = sum(dy * xhat) and dbeta = sum(dy).
__kernel void batch_norm_backward_data(
        __global const float* x, __global const float* dy, __global const float* partials,
        __global const float* gamma, __global const float* saved_mean, __global const float* saved_inv_std,
        __global float* dx, __global float* dgamma, __global float* dbeta, int row, int per_item, int slices,
        int rectify) {
    __local float sums[2];
    const int c = group_channel(row, per_item), start = group_row_start(row, per_item);
    const float mean = saved_mean[c], inv_std = saved_inv_std[c];
    if (get_local_id(0) == 0) {
        float s = 0.0f, t = 0.0f;
        for (int k = 0; k < slices; ++k) { s += partials[2 * (c * slices + k)]; t += partials[2 * (c * slices + k) + 1]; }
        sums[0] = s;
        sums[1] = t * inv_std;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    const float sum_dy = sums[0], sum_dy_xhat = sums[1];
    if (start + get_local_id(0) == 0) { dbeta[c] = sum_dy; dgamma[c] = sum_dy_xhat; }
    const float scale = gamma[c] * inv_std, mean_dy = sum_dy / (float)row, mean_dy_xhat = sum_dy_xhat / (float)row;
    __global const float* xc = x + (long)c * row;
    __global const float* dyc = dy + (long)c * row;
    __global float* dxc = dx + (long)c * row;
    for (int k = 0, i = start + get_local_id(0); k < per_item && i < row; ++k, i += get_local_size(0)) {
        const float xhat = (RECTIFIED(xc[i]) - mean) * inv_std;
        const float d = scale * (dyc[i] - mean_dy - xhat * mean_dy_xhat);
        dxc[i] = rectify && !(xc[i] > 0.0f) ? 0.0f : d;
    }
}
