// Batch norm over rows of N*H*W per channel, in two stages so that a GPU sees hundreds of work-groups:
// stage 1 writes partial statistics of pieces of each row (batch_norm_statistics per slice, or the
// convolution before the batch norm per work-group, see conv_forward); stage 2 runs element-wise, and
// each of its work-groups first folds its channel's partials in a fixed order (the same fold in every
// group, so every group gets the same numbers, and every run too); see OpenCLBatchNorm.swift.
// `slope` is the activation folded into the batch norm's input (ACTIVATED, common.cl): 1 for none.

// Stage 1 of the batch statistics: the slice's (count, mean, sum of squared deviations from the mean),
// in two passes over the slice: stable where E[x^2] - E[x]^2 is not.
__kernel void batch_norm_statistics(__global const float* x, __global float* partials, int row, int slice,
                                    int slices, float slope) {
    __local float scratch[REDUCE_GROUP];
    const int group = get_group_id(0), lid = get_local_id(0);
    __global const float* xc = x + (long)(group / slices) * row;
    const int begin = group % slices * slice, end = min(begin + slice, row);
    float s = 0.0f;
    for (int i = begin + lid; i < end; i += REDUCE_GROUP) s += ACTIVATED(xc[i]);
    const float mean = group_sum(s, scratch) / (float)(end - begin);
    float q = 0.0f;
    for (int i = begin + lid; i < end; i += REDUCE_GROUP) { const float d = ACTIVATED(xc[i]) - mean; q += d * d; }
    q = group_sum(q, scratch);
    if (lid == 0) {
        partials[3 * group] = (float)(end - begin);
        partials[3 * group + 1] = mean;
        partials[3 * group + 2] = q;
    }
}

// (count, mean, m2) of a and b together: Chan, Golub and LeVeque's pairwise update.
float3 combined(float3 a, float3 b) {
    const float total = a.x + b.x;
    if (total == 0.0f) return a;
    const float delta = b.y - a.y;
    return (float3)(total, a.y + delta * (b.x / total), a.z + b.z + delta * delta * (a.x * b.x / total));
}

// (count, mean, m2) of channel c from its `parts` partials (count, mean, m2) at
// partials[3 * (c * parts + k)], folded by the whole work-group: item i folds parts i, i + size, … in
// order, then a fixed tree combines the items. Every group folding channel c gets the same numbers.
float3 group_statistics(__global const float* partials, int c, int parts, __local float3* scratch) {
    const int lid = get_local_id(0);
    float3 s = (float3)(0.0f, 0.0f, 0.0f);
    for (int k = lid; k < parts; k += REDUCE_GROUP) {
        __global const float* p = partials + 3 * ((long)c * parts + k);
        s = combined(s, (float3)(p[0], p[1], p[2]));
    }
    scratch[lid] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int span = REDUCE_GROUP / 2; span > 0; span >>= 1) {
        if (lid < span) scratch[lid] = combined(scratch[lid], scratch[lid + span]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float3 total = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return total;
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
        int parts, float momentum, float epsilon, float slope) {
    __local float3 scratch[REDUCE_GROUP];
    const int c = group_channel(row, per_item), start = group_row_start(row, per_item);
    const float3 statistics = group_statistics(partials, c, parts, scratch);
    // The count is the row's, or a synchronised batch norm's global batch's (see OpenCLBatchNorm.swift).
    const float count = statistics.x, mean = statistics.y, variance = statistics.z / count;
    const float inv_std = 1.0f / sqrt(variance + epsilon);
    const float scale = gamma[c] * inv_std, shift = beta[c] - mean * scale;
    __global const float* xc = x + (long)c * row;
    __global float* yc = y + (long)c * row;
    for (int k = 0, i = start + get_local_id(0); k < per_item && i < row; ++k, i += get_local_size(0))
        yc[i] = ACTIVATED(xc[i]) * scale + shift;
    if (start + get_local_id(0) == 0) {
        saved_mean[c] = mean;
        saved_inv_std[c] = inv_std;
        const float unbiased = count > 1.0f ? variance * count / (count - 1.0f) : variance;
        running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * mean;
        running_var[c] = (1.0f - momentum) * running_var[c] + momentum * unbiased;
    }
}

__kernel void batch_norm_inference_forward(
        __global const float* x, __global const float* gamma, __global const float* beta,
        __global const float* running_mean, __global const float* running_var, __global float* y,
        int row, int count, float epsilon, float slope) {
    const int i = get_global_id(0);
    if (i >= count) return;
    const int c = i / row;
    const float scale = gamma[c] / sqrt(running_var[c] + epsilon), shift = beta[c] - running_mean[c] * scale;
    y[i] = ACTIVATED(x[i]) * scale + shift;
}

// Backward stage 1: per slice, sum(dy) and sum(dy * xhat), to sums[offset + 2 * (c * slices + slice)].
// Summed over the slices they are dbeta and dgamma (sum_gradients adds them, in slice order); the
// input gradient needs them too (batch_norm_backward_data, or conv_backward's prologue).
__kernel void batch_norm_backward_sums(__global const float* x, __global const float* dy,
                                       __global const float* saved_mean, __global const float* saved_inv_std,
                                       __global float* sums, int offset, int row, int slice, int slices, float slope) {
    __local float scratch[REDUCE_GROUP];
    const int group = get_group_id(0), c = group / slices, lid = get_local_id(0);
    __global const float* xc = x + (long)c * row;
    __global const float* dyc = dy + (long)c * row;
    const int begin = group % slices * slice, end = min(begin + slice, row);
    const float mean = saved_mean[c], inv_std = saved_inv_std[c];
    float s = 0.0f, t = 0.0f;
    for (int i = begin + lid; i < end; i += REDUCE_GROUP) { s += dyc[i]; t += dyc[i] * ((ACTIVATED(xc[i]) - mean) * inv_std); }
    s = group_sum(s, scratch);
    t = group_sum(t, scratch);
    if (lid == 0) { sums[offset + 2 * group] = s; sums[offset + 2 * group + 1] = t; }
}

// Backward stage 2: dx = gamma/sigma * (dy - mean(dy) - xhat * mean(dy * xhat)).
__kernel void batch_norm_backward_data(
        __global const float* x, __global const float* dy, __global const float* sums, int offset,
        __global const float* gamma, __global const float* saved_mean, __global const float* saved_inv_std,
        __global float* dx, int row, int per_item, int slices, float slope) {
    __local float folded[2];
    const int c = group_channel(row, per_item), start = group_row_start(row, per_item);
    const float mean = saved_mean[c], inv_std = saved_inv_std[c];
    if (get_local_id(0) == 0) {
        float s = 0.0f, t = 0.0f;
        __global const float* sc = sums + offset + 2 * c * slices;
        for (int k = 0; k < slices; ++k) { s += sc[2 * k]; t += sc[2 * k + 1]; }
        folded[0] = s;
        folded[1] = t;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    const float sum_dy = folded[0], sum_dy_xhat = folded[1];
    const float scale = gamma[c] * inv_std, mean_dy = sum_dy / (float)row, mean_dy_xhat = sum_dy_xhat / (float)row;
    __global const float* xc = x + (long)c * row;
    __global const float* dyc = dy + (long)c * row;
    __global float* dxc = dx + (long)c * row;
    for (int k = 0, i = start + get_local_id(0); k < per_item && i < row; ++k, i += get_local_size(0)) {
        const float xhat = (ACTIVATED(xc[i]) - mean) * inv_std;
        const float d = scale * (dyc[i] - mean_dy - xhat * mean_dy_xhat);
        dxc[i] = ACTIVATION_GRADIENT(xc[i], d);
    }
}
