// Log-softmax and NLL over class scores laid out [K, N]: one work-item per sample.

__kernel void log_softmax_forward(__global const float* x, __global float* y, int classes, int batch) {
    const int j = get_global_id(0);
    if (j >= batch) return;
    float top = -INFINITY;
    for (int c = 0; c < classes; ++c) top = max(top, x[c * batch + j]);
    float total = 0.0f;
    for (int c = 0; c < classes; ++c) total += exp(x[c * batch + j] - top);
    const float shift = top + log(total);
    for (int c = 0; c < classes; ++c) y[c * batch + j] = x[c * batch + j] - shift;
}

__kernel void log_softmax_backward(__global const float* y, __global const float* dy, __global float* dx,
                                   int classes, int batch) {
    const int j = get_global_id(0);
    if (j >= batch) return;
    float total = 0.0f;
    for (int c = 0; c < classes; ++c) total += dy[c * batch + j];
    for (int c = 0; c < classes; ++c) dx[c * batch + j] = dy[c * batch + j] - exp(y[c * batch + j]) * total;
}

// Work-item i takes samples i, i + global size, …: each group sums -logp[label] and the argmax hits
// of its samples and, when `gradient` is not null, writes the gradient of the mean NLL. A single
// group adds its sums to totals[0..1] itself; several write partials[2g..2g+1], which add_totals
// then adds in group order. `totals` is the only host read-back of an epoch.
__kernel void nll_loss(__global const float* logp, __global const int* labels, __global float* totals,
                       __global float* partials, __global float* gradient, int classes, int batch) {
    __local float scratch[REDUCE_GROUP];
    float loss = 0.0f, correct = 0.0f;
    for (int j = get_global_id(0); j < batch; j += get_global_size(0)) {
        const int target = labels[j];
        loss -= logp[target * batch + j];
        int best = 0;
        for (int c = 1; c < classes; ++c) if (logp[c * batch + j] > logp[best * batch + j]) best = c;
        if (best == target) correct += 1.0f;
        if (gradient) {
            for (int c = 0; c < classes; ++c) gradient[c * batch + j] = c == target ? -1.0f / (float)batch : 0.0f;
        }
    }
    loss = group_sum(loss, scratch);
    correct = group_sum(correct, scratch);
    if (get_local_id(0) != 0) return;
    if (get_num_groups(0) == 1) {
        totals[0] += loss;
        totals[1] += correct;
    } else {
        partials[2 * get_group_id(0)] = loss;
        partials[2 * get_group_id(0) + 1] = correct;
    }
}

__kernel void add_totals(__global const float* partials, __global float* totals, int groups) {
    if (get_global_id(0) != 0) return;
    float loss = 0.0f, correct = 0.0f;
    for (int g = 0; g < groups; ++g) { loss += partials[2 * g]; correct += partials[2 * g + 1]; }
    totals[0] += loss;
    totals[1] += correct;
}
