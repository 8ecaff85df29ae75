/* kernel_cycles.c - in-cache speed of every dot kernel at every SIMD level.
 *
 * matvec measures what a product sustains against memory; this measures the
 * kernels alone, on 64 rows of 4096 that stay in L2, as time-stamp-counter
 * ticks per block (best of many short runs, so other load on the machine
 * mostly drops out). It is the number to watch while optimising a kernel:
 * a kernel cannot reach the memory bound if its in-cache bytes per tick,
 * times the TSC rate, is below the per-core share of the bandwidth.
 *
 * usage: kernel_cycles [level ...]   (default: every level this CPU has) */
#include "quant/quant_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <x86intrin.h>
static uint64_t ticks(void) { return __rdtsc(); }
#else
#include <time.h>
static uint64_t ticks(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}
#endif

enum { N = 4096, ROWS = 64 };
static uint64_t rs = 1;
static uint64_t r64(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return rs; }

static void run_level(const ds4_quant_kernels *k) {
    static uint8_t w[ROWS * N * 2];
    static float xf[N], out[ROWS];
    static ds4_act_q8_0 xa[N / 32];
    static ds4_block_q8_K xk[N / 256];
    for (int i = 0; i < N; i++) xf[i] = (float)((int)(r64() % 2001) - 1000) * 1e-3f;
    ds4_quantize_act_q8_0(xf, xa, N);
    ds4_quantize_q8_K(xf, xk, N);
    static const struct { uint32_t type; int mode; const char *label; } kinds[] = {
        {DS4_TYPE_Q8_0, 0, "Q8_0"}, {DS4_TYPE_IQ2_XXS, 0, "IQ2_XXS"}, {DS4_TYPE_IQ2_XXS, 1, "IQ2_XXS 1row"},
        {DS4_TYPE_Q2_K, 0, "Q2_K"}, {DS4_TYPE_Q4_K, 0, "Q4_K"}, {DS4_TYPE_F16, 0, "F16 exact"},
        {DS4_TYPE_F16, 1, "F16 exact 1row"}, {DS4_TYPE_F16, 2, "F16 fast"},
    };
    for (size_t t = 0; t < sizeof kinds / sizeof kinds[0]; t++) {
        uint32_t type = kinds[t].type;
        size_t rb = ds4_row_bytes(type, N), bb = ds4_type_block_bytes(type);
        for (size_t i = 0; i < sizeof w; i++) w[i] = (uint8_t)r64();
        uint16_t d = ds4_f32_to_f16(0.01f);
        for (size_t o = 0; o + bb <= rb * ROWS; o += bb) {
            if (type == DS4_TYPE_Q8_0 || type == DS4_TYPE_IQ2_XXS) memcpy(w + o, &d, 2);
            if (type == DS4_TYPE_Q4_K) { memcpy(w + o, &d, 2); memcpy(w + o + 2, &d, 2); }
            if (type == DS4_TYPE_Q2_K) { memcpy(w + o + 80, &d, 2); memcpy(w + o + 82, &d, 2); }
            if (type == DS4_TYPE_F16) { uint16_t h = ds4_f32_to_f16((float)(r64() % 100) * 0.01f); memcpy(w + o, &h, 2); }
        }
        uint64_t best = ~0ull;
        for (int rep = 0; rep < 300; rep++) {
            uint64_t t0 = ticks();
            switch (type) {
            case DS4_TYPE_Q8_0: k->rows_q8_0(N, ROWS, w, rb, xa, out); break;
            case DS4_TYPE_IQ2_XXS:
                if (kinds[t].mode) for (int r = 0; r < ROWS; r++) out[r] = k->dot_iq2_xxs(N, w + r * rb, xk);
                else k->rows_iq2_xxs(N, ROWS, w, rb, xk, out);
                break;
            case DS4_TYPE_Q2_K: k->rows_q2_K(N, ROWS, w, rb, xk, out); break;
            case DS4_TYPE_Q4_K: k->rows_q4_K(N, ROWS, w, rb, xk, out); break;
            case DS4_TYPE_F16:
                if (kinds[t].mode == 0) k->rows_f16(N, ROWS, (const uint16_t *)w, rb, xf, out);
                else for (int r = 0; r < ROWS; r++)
                    out[r] = (kinds[t].mode == 1 ? k->dot_f16 : k->dot_f16_fast)(N, (const uint16_t *)(w + r * rb), xf);
                break;
            }
            uint64_t dt = ticks() - t0;
            if (dt < best) best = dt;
        }
        double blocks = (double)ROWS * N / ds4_type_block_elems(type);
        if (type == DS4_TYPE_F16) blocks /= 32;   /* report F16 per 32 elements */
        printf("%-7s %-15s %8.2f ticks/block %7.2f bytes/tick\n", k->name, kinds[t].label, (double)best / blocks,
               (double)rb * ROWS / (double)best);
    }
}

int main(int argc, char **argv) {
    static const char *all[] = {"scalar", "avx2", "avx512", "neon"};
    int nl = argc > 1 ? argc - 1 : 4;
    const char **levels = argc > 1 ? (const char **)argv + 1 : all;
    printf("# in-cache dot kernels: %d rows of %d, ticks = %s (F16 counted per 32 elements)\n", ROWS, N,
#if defined(__x86_64__)
           "TSC"
#else
           "ns"
#endif
    );
    for (int i = 0; i < nl; i++) {
        const ds4_quant_kernels *k = ds4_quant_kernels_for(levels[i]);
        if (k) run_level(k);
        else if (argc > 1) fprintf(stderr, "kernel_cycles: level %s not available here\n", levels[i]);
    }
    return 0;
}
