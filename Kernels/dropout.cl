// Dropout and Dropout2d with the counter-based generator of common.cl.

// mask = keep ? 1/(1-p) : 0; y = x * mask, one work-item per element. Decision d (the element, or
// for Dropout2d its (c, n) plane of `spread` elements) is Philox word d%4 of block d/4 at counter
// (d/4, step): a plane's elements each draw the same word.
__kernel void dropout_forward(__global const float* x, __global float* y, __global float* mask, int count,
                              int spread, float probability, float keep_scale, uint key0, uint key1, ulong step) {
    const int i = get_global_id(0);
    if (i >= count) return;
    const int d = i / spread;
    const uint4 words = philox((uint2)(key0, key1), (uint)(d / 4), step);
    const int lane = d % 4;
    const uint word = lane == 0 ? words.x : lane == 1 ? words.y : lane == 2 ? words.z : words.w;
    const float value = philox_unit(word) >= probability ? keep_scale : 0.0f;
    mask[i] = value;
    y[i] = x[i] * value;
}
