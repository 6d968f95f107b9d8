// Shared by every kernel file (the files are built as one program, this one first).
// Reductions and element-wise maths are kept un-fused so results track the CPU device closely.
#pragma OPENCL FP_CONTRACT OFF

// Philox-4x32-10, word for word as Sources/Kiln/Devices/Philox.swift: counter (index, step lo,
// step hi, 0), key (key.x, key.y). Dropout masks and augmentations equal the CPU's bit for bit.
uint4 philox(uint2 key, uint index, ulong step) {
    uint4 c = (uint4)(index, (uint)step, (uint)(step >> 32), 0u);
    uint k0 = key.x, k1 = key.y;
    for (int round = 0; round < 10; ++round) {
        const uint hi0 = mul_hi(0xD2511F53u, c.x), lo0 = 0xD2511F53u * c.x;
        const uint hi1 = mul_hi(0xCD9E8D57u, c.z), lo1 = 0xCD9E8D57u * c.z;
        c = (uint4)(hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0);
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return c;
}

// The activations (Activation in Ops/Activation.swift): x above zero, slope * x below (identity 1,
// ReLU 0, whose 0 stays +0); a NaN stays NaN. ACTIVATED and ACTIVATION_GRADIENT read `slope` from the
// enclosing kernel.
#define ACTIVATED(v) ((v) < 0.0f ? (slope == 0.0f ? 0.0f : (v) * slope) : (v))
// d times the activation's derivative where its input (or output: they are positive together) is v.
#define ACTIVATION_GRADIENT(v, d) ((v) > 0.0f ? (d) : slope == 0.0f ? 0.0f : (d) * slope)

// A word as a float in [0, 1) with 24 random bits (exact in float32).
float philox_unit(uint word) {
    return (float)(word >> 8) * (1.0f / 16777216.0f);
}

// Sum over a work-group of REDUCE_GROUP items (a -D constant, a power of two) in a fixed tree
// order: no atomics, so a result repeats bit for bit. Every item gets the total.
float group_sum(float value, __local float* scratch) {
    const int lid = get_local_id(0);
    scratch[lid] = value;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int span = REDUCE_GROUP / 2; span > 0; span >>= 1) {
        if (lid < span) scratch[lid] += scratch[lid + span];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float total = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);  // the caller may reuse scratch at once
    return total;
}
