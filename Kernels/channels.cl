// Per-channel helpers and the last stage of every gradient: the bias add, the bias gradient's slice
// sums, and sum_gradients, which adds up the partial sums that the weight, bias and batch-norm
// gradients leave in the device's gradient arena (see OpenCLGradientSums.swift).

// x[c, ...] += bias[c], rows of `row` elements.
__kernel void add_channel_bias(__global float* x, __global const float* bias, int row, int count) {
    const int i = get_global_id(0);
    if (i < count) x[i] += bias[i / row];
}

// Stage 1 of sums[c] = sum of row c: one work-group per (channel, slice) of the row writes
// partials[offset + c * slices + slice].
__kernel void slice_sums(__global const float* x, __global float* partials, int offset, int row, int slice, int slices) {
    __local float scratch[REDUCE_GROUP];
    const int group = get_group_id(0);
    __global const float* xc = x + (long)(group / slices) * row;
    const int begin = group % slices * slice, end = min(begin + slice, row);
    float s = 0.0f;
    for (int i = begin + get_local_id(0); i < end; i += REDUCE_GROUP) s += xc[i];
    s = group_sum(s, scratch);
    if (get_local_id(0) == 0) partials[offset + group] = s;
}

// Stage 2 of every split gradient sum, all of a step's in one launch. Entry e of `table` (6 ints:
// output offset, outputs, partials offset, parts, output stride, part stride) asks for
// out[output offset + o] = sum over p < parts of partials[partials offset + o * output stride + p * part stride]
// for o < outputs. One work-group per output over all entries in order; its items take parts
// t, t + REDUCE_GROUP, …, then a fixed tree: the same sum every run.
__kernel void sum_gradients(__global const float* partials, __global float* out, __global const int* table, int entries) {
    __local float scratch[REDUCE_GROUP];
    int o = get_group_id(0), e = 0;
    while (e < entries - 1 && o >= table[6 * e + 1]) { o -= table[6 * e + 1]; ++e; }
    __global const int* entry = table + 6 * e;
    __global const float* p = partials + entry[2] + (long)o * entry[4];
    float s = 0.0f;
    for (int k = get_local_id(0); k < entry[3]; k += REDUCE_GROUP) s += p[(long)k * entry[5]];
    s = group_sum(s, scratch);
    if (get_local_id(0) == 0) out[entry[0] + o] = s;
}
