// Dropout and Dropout2d with the counter-based generator of common.cl.

// mask = keep ? 1/(1-p) : 0; y = x * mask, for decisions over `spread` elements each (1, or a plane's).
// The decision d is Philox word d%4 of block d/4 at counter (d/4, step). Each work-item takes a run of
// `run` neighbouring elements and computes each Philox block once for the run (for a run of 16: four
// times for Dropout, once or twice for Dropout2d) instead of once per element.
__kernel void dropout_forward(__global const float* x, __global float* y, __global float* mask, int count,
                              int spread, float probability, float keep_scale, uint key0, uint key1, ulong step,
                              int run) {
    const int first = get_global_id(0) * run, end = min(first + run, count);
    const uint2 key = (uint2)(key0, key1);
    int block = -1;
    uint4 words = (uint4)(0u);
    for (int i = first; i < end; ++i) {
        const int d = i / spread;
        if (d / 4 != block) {
            block = d / 4;
            words = philox(key, (uint)block, step);
        }
        const int lane = d % 4;
        const uint word = lane == 0 ? words.x : lane == 1 ? words.y : lane == 2 ? words.z : words.w;
        const float value = philox_unit(word) >= probability ? keep_scale : 0.0f;
        mask[i] = value;
        y[i] = x[i] * value;
    }
}
