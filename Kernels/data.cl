// Batch assembly on the device: image order[start + slot] of the uploaded split goes to batch slot
// `slot`; with augmentation, rotated and shifted (bilinear) or cropped, then flipped and cut out, from
// the slot's Philox words as Augmentation.swift and CPUData.swift draw and apply them.

float pixel(__global const float* from, int y, int x, int height, int width, float background) {
    return (y >= 0 && y < height && x >= 0 && x < width) ? from[y * width + x] : background;
}

// torch's reflect padding (the edge is not repeated), for offsets less than n outside.
int mirrored(int i, int n) {
    return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i);
}

__kernel void gather_batch(__global const float* images, __global const int* labels, __global const int* order,
                           __global float* output, __global int* output_labels, int channels, int total, int batch,
                           int height, int width, int start, int augment, float max_degrees, float max_shift,
                           int crop_padding, int reflect, int flip, int cutout,
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
    const uint2 key = (uint2)(key0, key1);
    const int rotates = max_degrees != 0.0f || max_shift != 0.0f;
    // Augmentation.placement: the flip from word 3 of the slot's block, crop and cutout from its
    // placement block (the slot with the top bit set); integers as the high word of word × range.
    const uint4 words = (rotates || flip) ? philox(key, (uint)slot, step) : (uint4)(0);
    const uint4 place = (crop_padding > 0 || cutout > 0) ? philox(key, (uint)slot | 0x80000000u, step) : (uint4)(0);
    if (cutout > 0) {
        const int left = (int)mul_hi(place.z, (uint)width) - cutout / 2, top = (int)mul_hi(place.w, (uint)height) - cutout / 2;
        if (x >= left && x < left + cutout && y >= top && y < top + cutout) { output[i] = 0.0f; return; }
    }
    // x mirrored by the flip.
    const int mx = (flip && (words.w >> 31)) ? width - 1 - x : x;
    if (crop_padding > 0) {
        const uint span = (uint)(2 * crop_padding + 1);
        int sx = mx + (int)mul_hi(place.x, span) - crop_padding, sy = y + (int)mul_hi(place.y, span) - crop_padding;
        const int inside = sx >= 0 && sx < width && sy >= 0 && sy < height;
        if (!inside && !reflect) { output[i] = background; return; }
        output[i] = from[mirrored(sy, height) * width + mirrored(sx, width)];
        return;
    }
    if (!rotates) { output[i] = from[y * width + mx]; return; }
    // The inverse map of Augmentation.transform, from the slot's Philox words.
    const float angle = (philox_unit(words.x) * 2.0f - 1.0f) * max_degrees * (M_PI_F / 180.0f);
    const float tx = (philox_unit(words.y) * 2.0f - 1.0f) * max_shift;
    const float ty = (philox_unit(words.z) * 2.0f - 1.0f) * max_shift;
    const float a = cos(angle), b = sin(angle);
    const float cx = (float)(width - 1) / 2.0f, cy = (float)(height - 1) / 2.0f;
    const float xp = (float)mx - cx, yp = (float)y - cy;
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
