// Parameter updates, following torch.optim.SGD and torch.optim.Adam step for step.

__kernel void sgd_step(__global float* p, __global const float* g, __global float* v, int count,
                       float learning_rate, float momentum, int nesterov, float weight_decay) {
    const int i = get_global_id(0);
    if (i >= count) return;
    float d = g[i] + weight_decay * p[i];
    if (momentum != 0.0f) {
        v[i] = momentum * v[i] + d;
        d = nesterov ? d + momentum * v[i] : v[i];
    }
    p[i] -= learning_rate * d;
}

// step_size = lr / (1 - beta1^t) and root_correction2 = sqrt(1 - beta2^t) come from the host.
__kernel void adam_step(__global float* p, __global const float* g, __global float* m, __global float* v,
                        int count, float step_size, float beta1, float beta2, float epsilon, float weight_decay,
                        float root_correction2) {
    const int i = get_global_id(0);
    if (i >= count) return;
    const float d = g[i] + weight_decay * p[i];
    m[i] = beta1 * m[i] + (1.0f - beta1) * d;
    v[i] = beta2 * v[i] + (1.0f - beta2) * d * d;
    p[i] -= step_size * m[i] / (sqrt(v[i]) / root_correction2 + epsilon);
}

// An exponential moving average of the weights: a += w·(v − a) with w = 1 − decay (torch.lerp).
__kernel void moving_average(__global float* a, __global const float* v, int count, float weight) {
    const int i = get_global_id(0);
    if (i >= count) return;
    a[i] += weight * (v[i] - a[i]);
}
