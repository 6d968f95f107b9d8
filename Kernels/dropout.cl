// Dropout and Dropout2d with the counter-based generator of common.cl.

// mask = keep ? 1/(1-p) : 0; y = x * mask. Decision d (an element, or a (c, n) plane of `spread`
// elements for Dropout2d) is Philox word d%4 of block d/4 at counter (d/4, step).
__kernel void dropout_forward(__global const float* x, __global float* y, __global float* mask, int decisions,
                              int spread, float probability, float keep_scale, uint key0, uint key1, ulong step) {
    const int d = get_global_id(0);
    if (d >= decisions) return;
    const uint4 words = philox((uint2)(key0, key1), (uint)(d / 4), step);
    const int lane = d % 4;
    const uint word = lane == 0 ? words.x : lane == 1 ? words.y : lane == 2 ? words.z : words.w;
    const float value = philox_unit(word) >= probability ? keep_scale : 0.0f;
    for (int i = d * spread; i < (d + 1) * spread; ++i) {
        mask[i] = value;
        y[i] = x[i] * value;
    }
}
