// Group norm (nn.GroupNorm; nn.LayerNorm over [C, H, W] is one group) on channel-major [C, N, H, W]
// activations. Statistics are per unit, an image's group of channels: unit u = n * groups + g (the
// saved mean and 1/sigma are [N, G]) is `cpg` runs of `plane` values, one run per channel of the
// group, batch * plane apart; its element j is channel g * cpg + j / plane, position j % plane. The two
// stages are batch norm's (batchnorm.cl, built into the same program before this file) with units in
// place of channel rows: stage 1 reduces slices of each unit, stage 2 runs element-wise and each
// work-group first folds its unit's partials in a fixed order (group_statistics, group_row_start and
// group_channel of batchnorm.cl). `weight_stride` is 1 where weight and bias hold one value per element
// ([C, H, W], LayerNorm's) and 0 where they hold one per channel.

// Where element j of unit u lies in the activation, and which weight and bias it takes.
long unit_offset(int u, int j, int batch, int groups, int cpg, int plane) {
    const int c = u % groups * cpg + j / plane;
    return ((long)c * batch + u / groups) * plane + j % plane;
}
int affine_index(int u, int j, int groups, int cpg, int plane, int weight_stride) {
    const int c = u % groups * cpg + j / plane;
    return weight_stride ? c * plane + j % plane : c;
}

// Stage 1: each slice's (count, mean, sum of squared deviations from the mean), in two passes over
// the slice as batch_norm_statistics.
__kernel void group_norm_statistics(__global const float* x, __global float* partials, int batch, int groups, int cpg,
                                    int plane, int slice, int slices) {
    __local float scratch[REDUCE_GROUP];
    const int part = get_group_id(0), lid = get_local_id(0), u = part / slices;
    const int begin = part % slices * slice, end = min(begin + slice, cpg * plane);
    float s = 0.0f;
    for (int j = begin + lid; j < end; j += REDUCE_GROUP) s += x[unit_offset(u, j, batch, groups, cpg, plane)];
    const float mean = group_sum(s, scratch) / (float)(end - begin);
    float q = 0.0f;
    for (int j = begin + lid; j < end; j += REDUCE_GROUP) {
        const float d = x[unit_offset(u, j, batch, groups, cpg, plane)] - mean;
        q += d * d;
    }
    q = group_sum(q, scratch);
    if (lid == 0) {
        partials[3 * part] = (float)(end - begin);
        partials[3 * part + 1] = mean;
        partials[3 * part + 2] = q;
    }
}

// Stage 2: y = (x - mean) / sigma * weight + bias (biased variance); the unit's first item saves its
// mean and 1/sigma for backward.
__kernel void group_norm_forward(__global const float* x, __global const float* partials, __global const float* weight,
                                 __global const float* bias, __global float* saved_mean, __global float* saved_inv_std,
                                 __global float* y, int batch, int groups, int cpg, int plane, int per_item, int parts,
                                 float epsilon, int weight_stride) {
    __local float3 scratch[REDUCE_GROUP];
    const int row = cpg * plane, u = group_channel(row, per_item), start = group_row_start(row, per_item);
    const float3 statistics = group_statistics(partials, u, parts, scratch);
    const float mean = statistics.y, inv_std = 1.0f / sqrt(statistics.z / statistics.x + epsilon);
    for (int k = 0, j = start + get_local_id(0); k < per_item && j < row; ++k, j += get_local_size(0)) {
        const long at = unit_offset(u, j, batch, groups, cpg, plane);
        const int w = affine_index(u, j, groups, cpg, plane, weight_stride);
        y[at] = (x[at] - mean) * inv_std * weight[w] + bias[w];
    }
    if (start + get_local_id(0) == 0) {
        saved_mean[u] = mean;
        saved_inv_std[u] = inv_std;
    }
}

// Backward stage 1: per slice of each unit, sum(dy * weight) and sum(dy * weight * xhat), to
// sums[2 * part] and sums[2 * part + 1].
__kernel void group_norm_backward_sums(__global const float* x, __global const float* dy, __global const float* weight,
                                       __global const float* saved_mean, __global const float* saved_inv_std,
                                       __global float* sums, int batch, int groups, int cpg, int plane, int slice,
                                       int slices, int weight_stride) {
    __local float scratch[REDUCE_GROUP];
    const int part = get_group_id(0), lid = get_local_id(0), u = part / slices;
    const int begin = part % slices * slice, end = min(begin + slice, cpg * plane);
    const float mean = saved_mean[u], inv_std = saved_inv_std[u];
    float s = 0.0f, t = 0.0f;
    for (int j = begin + lid; j < end; j += REDUCE_GROUP) {
        const long at = unit_offset(u, j, batch, groups, cpg, plane);
        const float d = dy[at] * weight[affine_index(u, j, groups, cpg, plane, weight_stride)];
        s += d;
        t += d * ((x[at] - mean) * inv_std);
    }
    s = group_sum(s, scratch);
    t = group_sum(t, scratch);
    if (lid == 0) { sums[2 * part] = s; sums[2 * part + 1] = t; }
}

// Backward stage 2: dx = (dy * weight - mean(dy * weight) - xhat * mean(dy * weight * xhat)) / sigma,
// the means over the unit, from its `parts` partial sums.
__kernel void group_norm_backward_data(__global const float* x, __global const float* dy, __global const float* weight,
                                       __global const float* saved_mean, __global const float* saved_inv_std,
                                       __global const float* sums, __global float* dx, int batch, int groups, int cpg,
                                       int plane, int per_item, int parts, int weight_stride) {
    __local float folded[2];
    const int row = cpg * plane, u = group_channel(row, per_item), start = group_row_start(row, per_item);
    if (get_local_id(0) == 0) {
        float s = 0.0f, t = 0.0f;
        for (int k = 0; k < parts; ++k) { s += sums[2 * (u * parts + k)]; t += sums[2 * (u * parts + k) + 1]; }
        folded[0] = s;
        folded[1] = t;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    const float mean = saved_mean[u], inv_std = saved_inv_std[u];
    const float mean_d = folded[0] / (float)row, mean_d_xhat = folded[1] / (float)row;
    for (int k = 0, j = start + get_local_id(0); k < per_item && j < row; ++k, j += get_local_size(0)) {
        const long at = unit_offset(u, j, batch, groups, cpg, plane);
        const float d = dy[at] * weight[affine_index(u, j, groups, cpg, plane, weight_stride)];
        const float xhat = (x[at] - mean) * inv_std;
        dx[at] = inv_std * (d - mean_d - xhat * mean_d_xhat);
    }
}

// The parameters' gradient partials: for each channel c and position p, the sums over the batch of dy
// and of dy * xhat, to sums[offset + 2 * (c * plane + p)] and the float after. They are the per-element
// weight's and bias's gradients, and their sums over p the per-channel ones (sum_gradients adds either).
__kernel void group_norm_parameter_sums(__global const float* x, __global const float* dy,
                                        __global const float* saved_mean, __global const float* saved_inv_std,
                                        __global float* sums, int offset, int channels, int batch, int groups, int cpg,
                                        int plane) {
    const int i = get_global_id(0);
    if (i >= channels * plane) return;
    const int c = i / plane, p = i % plane, g = c / cpg;
    float s = 0.0f, t = 0.0f;
    for (int n = 0; n < batch; ++n) {
        const long at = ((long)c * batch + n) * plane + p;
        const int u = n * groups + g;
        s += dy[at];
        t += dy[at] * ((x[at] - saved_mean[u]) * saved_inv_std[u]);
    }
    sums[offset + 2 * i] = s;
    sums[offset + 2 * i + 1] = t;
}
