// The gradient of exact (erf) GELU, dx = g * (Phi(x) + x phi(x)), in one pass over x and g.
// candle's autograd spells it out in about a dozen elementwise kernels over the MLP's hidden
// activations, the largest tensor of a block. Built to PTX by model/build.rs (feature "cuda").
extern "C" __global__ void ldae_gelu_grad_f32(const float *x, const float *g, float *dx,
                                              unsigned int n) {
    for (unsigned int i = blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += blockDim.x * gridDim.x) {
        const float v = x[i];
        const float cdf = 0.5f * (1.0f + erff(v * 0.70710678118654752f));
        const float pdf = 0.39894228040143268f * expf(-0.5f * v * v);
        dx[i] = g[i] * (cdf + v * pdf);
    }
}
