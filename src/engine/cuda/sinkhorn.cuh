/* sinkhorn.cuh - the Sinkhorn comb of HC = 4 on 16 lanes, in place over the
 * 16 softmax numerators (exps) that the fast pre-mix (hc_mixnorm.cu) leaves
 * in comb when it defers its Sinkhorn.
 *
 * Why a shared device function: the deferred Sinkhorn (~3 us of 40 dependent
 * reciprocal steps) runs as one extra block of a LATER kernel of the same
 * sub-layer (k_qkv_post, k_route) that lasts longer than it, so it costs no
 * time on the critical path; the comb is first read by the next pre-mix's
 * folded hc_post. The operations are hc_mixnorm.cu's sinkhorn4_lanes (and so
 * k_hc_mix<4>'s, in its order): the comb is bit-identical whether deferred
 * or not. Call from lanes 0-15 of one warp (all 16 of them). */
#pragma once

static __device__ __forceinline__ void d_sinkhorn4_inplace(float *comb, int iters, float eps) {
    const int lane = threadIdx.x & 31, r = lane >> 2, k = lane & 3;
    const unsigned m16 = 0xffffu;
    const float e0 = comb[4 * r], e1 = comb[4 * r + 1], e2 = comb[4 * r + 2], e3 = comb[4 * r + 3];
    const float ez = comb[lane];
    __syncwarp(m16); /* every lane has read its row before any lane writes */
    const float sum = (((0.0f + e0) + e1) + e2) + e3;
    float C = ez * (1.0f / sum) + eps;
    for (int it = 0; it < iters; it++) {
        if (it > 0) {
            const float a = __shfl_sync(m16, C, 4 * r), b = __shfl_sync(m16, C, 4 * r + 1),
                        c = __shfl_sync(m16, C, 4 * r + 2), d = __shfl_sync(m16, C, 4 * r + 3);
            C *= 1.0f / ((((a + b) + c) + d) + eps);
        }
        const float a = __shfl_sync(m16, C, k), b = __shfl_sync(m16, C, 4 + k), c = __shfl_sync(m16, C, 8 + k),
                    d = __shfl_sync(m16, C, 12 + k);
        C *= 1.0f / ((((a + b) + c) + d) + eps);
    }
    comb[lane] = C;
}
