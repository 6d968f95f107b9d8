// Direct convolution kernels for the CPU (stride 1), in C because they need AVX2 and FMA: Swift
// compiles for baseline x86-64 and takes no per-function target. The kernels are compiled for
// AVX2+FMA alone and called only where `kiln_direct_available()` says the CPU has both; elsewhere
// Kiln convolves with im2col + sgemm.
//
// Both kernels see images on a flat padded grid: an image's channel plane holds the padded image row
// after row, so a tap (ky, kx) is one fixed offset (ky·width + kx, dilated) from output position
// p = oy·width + ox, for every p. Positions with ox past the output's width are computed too and
// thrown away (or, as gradients, are zero): in return the inner loops are plain runs of unaligned
// 8-float loads with no edge cases.
#ifndef KILN_DIRECT_CONVOLUTION_H
#define KILN_DIRECT_CONVOLUTION_H

/// Output channels per block of `kiln_direct_correlate`'s packed weights and of both kernels' rows.
#define KILN_DIRECT_OUTPUTS 4
/// `kiln_direct_correlate`'s positions come in multiples of this.
#define KILN_DIRECT_POSITIONS 16
/// `kiln_direct_weight_gradient`'s taps come in multiples of this.
#define KILN_DIRECT_TAPS 3

/// 1 when this CPU has AVX2 and FMA, which the kernels below need; 0 otherwise.
int kiln_direct_available(void);

/// out[o·outStride + p] = Σ_i Σ_t weight(o, i, t) · x[i·xStride + p + offsets[t]] for o < 4·blocks and
/// p < positions (a multiple of 16). `packed` holds the weights as [blocks][inputs][taps][4]: four
/// outputs' weights side by side. x must be readable up to the largest p + offset + 15.
void kiln_direct_correlate(const float *x, int inputs, long xStride, const int *offsets, int taps,
                           const float *packed, int blocks, float *out, long outStride, int positions);

/// dw[(o·inputs + i)·tapStride + t] += Σ_n Σ_{p < positions} dy[o·dyStride + n·dyImage + p]
///                                                          · x[i·xStride + n·xImage + p + offsets[t]]
/// for o < 4·blocks, i < inputs, t < taps (a multiple of 3) and images n < images; positions is a
/// multiple of 8. dy must be zero wherever p is not an output pixel, and x finite wherever it is read.
void kiln_direct_weight_gradient(const float *dy, int blocks, long dyStride, long dyImage,
                                 const float *x, int inputs, long xStride, long xImage, int images,
                                 const int *offsets, int taps, int tapStride, float *dw, int positions);

#endif
