// Log-softmax and NLL over class scores laid out [K, N].

// log(sum over c of exp(x[c, j])) for sample j, shifted by the largest score so that exp cannot overflow.
float log_sum_exp(__global const float* x, int classes, int batch, int j) {
    float top = -INFINITY;
    for (int c = 0; c < classes; ++c) top = max(top, x[c * batch + j]);
    float total = 0.0f;
    for (int c = 0; c < classes; ++c) total += exp(x[c * batch + j] - top);
    return top + log(total);
}

// One work-item per sample j (items i, i + global size, …): logp = log_softmax(scores) and, when
// `gradient` is not null, the gradient of the mean loss with respect to the scores, softmax - q, over
// N, where q = (1 - smoothing) * onehot + smoothing / classes (label smoothing; 0: the NLL). A sample's
// loss is (1 - smoothing) * -logp[label] + smoothing * mean of -logp. Each group sums the losses and
// the argmax hits of its samples: a single group adds them to totals[0..1] itself; several write
// partials[2g..2g+1], which add_totals then adds in group order. `totals` is the only host read-back
// of an epoch.
__kernel void log_softmax_nll(__global const float* scores, __global const int* labels, __global float* logp,
                              __global float* totals, __global float* partials, __global float* gradient,
                              int classes, int batch, float smoothing) {
    __local float scratch[REDUCE_GROUP];
    const float share = -1.0f / (float)batch;
    // -q/N at the label and elsewhere; without smoothing +0 elsewhere (not -0), so the NLL's floats are exact.
    const float off = smoothing / (float)classes;
    const float label_share = (1.0f - smoothing + off) * share, other_share = smoothing == 0.0f ? 0.0f : off * share;
    float loss = 0.0f, correct = 0.0f;
    for (int j = get_global_id(0); j < batch; j += get_global_size(0)) {
        const float shift = log_sum_exp(scores, classes, batch, j);
        const int target = labels[j];
        int best = 0;
        float sample = 0.0f, total = 0.0f;
        for (int c = 0; c < classes; ++c) {
            const float y = scores[c * batch + j] - shift;
            logp[c * batch + j] = y;
            if (c == target) sample = -y;
            total += y;
            if (y > logp[best * batch + j]) best = c;
            // -q/N through the log-softmax's backward (g - exp(y) * sum of g), as the CPU does.
            if (gradient) gradient[c * batch + j] = (c == target ? label_share : other_share) - exp(y) * share;
        }
        if (smoothing != 0.0f) sample = (1.0f - smoothing) * sample - smoothing * total / (float)classes;
        loss += sample;
        if (best == target) correct += 1.0f;
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

// The layer's own passes (inference, and a model whose loss is not NLL): one work-item per sample.
__kernel void log_softmax_forward(__global const float* x, __global float* y, int classes, int batch) {
    const int j = get_global_id(0);
    if (j >= batch) return;
    const float shift = log_sum_exp(x, classes, batch, j);
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
