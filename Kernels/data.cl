// Batch assembly on the device: image order[start + slot] of the uploaded split goes to batch slot
// `slot`; with augmentation, rotated and shifted (bilinear) as CPUData.swift does.

float pixel(__global const float* from, int y, int x, int height, int width, float background) {
    return (y >= 0 && y < height && x >= 0 && x < width) ? from[y * width + x] : background;
}

__kernel void gather_batch(__global const float* images, __global const int* labels, __global const int* order,
                           __global float* output, __global int* output_labels, int channels, int total, int batch,
                           int height, int width, int start, int augment, float max_degrees, float max_shift,
                           __global const float* fill, uint key0, uint key1, ulong step) {
    const int i = get_global_id(0);
    if (i >= channels * batch * height * width) return;
    const int x = i % width, y = i / width % height, slot = i / (width * height) % batch;
    const int ch = i / (width * height * batch);
    const int image = order[start + slot];
    if (i < batch) output_labels[i] = labels[order[start + i]];
    __global const float* from = images + ((long)ch * total + image) * height * width;
    if (!augment) { output[i] = from[y * width + x]; return; }
    const float background = fill[ch];
    // The inverse map of Augmentation.transform (Device.swift), from the slot's Philox words.
    const uint4 words = philox((uint2)(key0, key1), (uint)slot, step);
    const float angle = (philox_unit(words.x) * 2.0f - 1.0f) * max_degrees * (M_PI_F / 180.0f);
    const float tx = (philox_unit(words.y) * 2.0f - 1.0f) * max_shift;
    const float ty = (philox_unit(words.z) * 2.0f - 1.0f) * max_shift;
    const float a = cos(angle), b = sin(angle);
    const float cx = (float)(width - 1) / 2.0f, cy = (float)(height - 1) / 2.0f;
    const float xp = (float)x - cx, yp = (float)y - cy;
    const float sx = a * xp + b * yp + cx + tx, sy = -b * xp + a * yp + cy + ty;
    const float x0 = floor(sx), y0 = floor(sy);
    const float fx = sx - x0, fy = sy - y0;
    const int ix = (int)x0, iy = (int)y0;
    const float top = pixel(from, iy, ix, height, width, background) * (1.0f - fx)
                    + pixel(from, iy, ix + 1, height, width, background) * fx;
    const float bottom = pixel(from, iy + 1, ix, height, width, background) * (1.0f - fx)
                       + pixel(from, iy + 1, ix + 1, height, width, background) * fx;
    output[i] = top * (1.0f - fy) + bottom * fy;
}
