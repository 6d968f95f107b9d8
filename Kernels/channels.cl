// Per-channel helpers: the bias add, and sums over the rows of a [C, N·H·W] tensor in two stages
// (slice_sums, then sum_parts), which the split weight gradient of convolution.cl shares.

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
// split reduction (slice sums, split weight gradients). Outputs from `split` on go to out2[o - split]
// instead (a weight gradient's bias). One work-group per output, its items taking parts t, t + size,
// …, then a fixed tree; the local size is a power of two up to 64.
__kernel void sum_parts(__global const float* partials, __global float* out, __global float* out2, int split,
                        int parts, int output_stride, int part_stride) {
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
    if (t == 0) {
        if (o < split) out[o] = scratch[0];
        else out2[o - split] = scratch[0];
    }
}
