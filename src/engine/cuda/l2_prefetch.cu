/* l2_prefetch.cu - weights pulled into L2 on a side branch of the decode
 * graph, ahead of the mat-vec that reads them.
 *
 * Why: a decoded token alternates between mat-vecs that stream weights from
 * DRAM and stretches of small latency-bound kernels (pre-mix, norms, RoPE,
 * attention, router) that leave DRAM idle for tens of microseconds. The
 * H100's L2 (50 MB) holds the next projection (q_b, out_a: 35.7 MB each), so
 * a side stream forked from the decode stream at the start of such a stretch
 * prefetches it (cp.async.bulk.prefetch on sm_90, prefetch.global.L2 before)
 * and the mat-vec then reads L2. Prefetches are hints: nothing waits on them
 * except the join that closes the captured graph, and no value changes.
 * DS4_CUDA_L2PF=0 turns it off. */
#include "engine/cuda/common.cuh"

#define PF_SLOTS 32
static struct {
    cudaStream_t s;
    cudaEvent_t fork, done;
    int ready, pending;
} side[PF_SLOTS];

static int pf_enabled(void) {
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("DS4_CUDA_L2PF");
        v = !(e && atoi(e) == 0);
    }
    return v;
}

#define PF_CHUNK 4096 /* bytes per thread */

static __global__ void k_l2_prefetch(const char *p, size_t bytes) {
    const size_t off = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * PF_CHUNK;
    if (off >= bytes) return;
    const size_t n = bytes - off < PF_CHUNK ? bytes - off : PF_CHUNK;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    /* p and bytes are 16-byte multiples (the wrapper rounds), so is every chunk */
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"(p + off), "r"((unsigned)n) : "memory");
#else
    for (size_t k = 0; k < n; k += 128) asm volatile("prefetch.global.L2 [%0];\n" ::"l"(p + off + k));
#endif
}

/* Forks from the current stream (ds4cu_s) here and prefetches the ranges on
 * the slot's side stream; 0 when done or skipped (off, or nothing to do). */
extern "C" int ds4cu_l2_prefetch(int count, const void *const *ptr, const size_t *bytes) {
    if (!pf_enabled() || count < 1) return 0;
    const int slot = ds4cu_current();
    if (slot < 0 || slot >= PF_SLOTS) return 0;
    if (!side[slot].ready) {
        if (cudaStreamCreateWithFlags(&side[slot].s, cudaStreamNonBlocking) != cudaSuccess ||
            cudaEventCreateWithFlags(&side[slot].fork, cudaEventDisableTiming) != cudaSuccess ||
            cudaEventCreateWithFlags(&side[slot].done, cudaEventDisableTiming) != cudaSuccess) {
            (void)cudaGetLastError();
            return 0; /* a hint: carry on without it */
        }
        side[slot].ready = 1;
    }
    if (cudaEventRecord(side[slot].fork, ds4cu_s) != cudaSuccess ||
        cudaStreamWaitEvent(side[slot].s, side[slot].fork, 0) != cudaSuccess)
        return -1;
    for (int k = 0; k < count; k++) {
        if (!ptr[k] || !bytes[k]) continue;
        const uintptr_t a = (uintptr_t)ptr[k] & ~(uintptr_t)15;
        const size_t n = ((uintptr_t)ptr[k] + bytes[k] - a + 15) & ~(size_t)15;
        const size_t threads = (n + PF_CHUNK - 1) / PF_CHUNK;
        k_l2_prefetch<<<(unsigned)((threads + 255) / 256), 256, 0, side[slot].s>>>((const char *)a, n);
    }
    side[slot].pending = 1;
    ds4cu_after("l2_prefetch");
    return 0;
}

/* The current stream waits for the side stream's prefetches (a captured
 * graph must rejoin its branches before the capture ends). */
extern "C" int ds4cu_l2_join(void) {
    const int slot = ds4cu_current();
    if (slot < 0 || slot >= PF_SLOTS || !side[slot].pending) return 0;
    side[slot].pending = 0;
    if (cudaEventRecord(side[slot].done, side[slot].s) != cudaSuccess ||
        cudaStreamWaitEvent(ds4cu_s, side[slot].done, 0) != cudaSuccess)
        return -1;
    return 0;
}
