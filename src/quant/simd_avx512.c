/* simd_avx512.c - the AVX-512 level's kernel table (F, BW, VL, VNNI, VBMI,
 * BITALG, GFNI). Only IQ2_XXS gains from 512-bit registers here (its kernels
 * live in iq2_xxs_avx512.c); the rest of this level's table reuses the AVX2
 * kernels, and dispatch.c merges in the AVX-512 Q8_0 ones. */
#include "quant/quant_impl.h"
#include "quant/iq2_xxs_avx512.h"

#if defined(__x86_64__)
#include <pthread.h>

static ds4_quant_kernels avx512;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void build(void) {
    ds4_iq2_xxs_avx512_init();
    avx512 = *ds4_kernels_avx2();
    avx512.name = "avx512";
    avx512.dot_iq2_xxs = ds4_iq2_xxs_dot_avx512;
    avx512.rows_iq2_xxs = ds4_iq2_xxs_rows_avx512;
}

const ds4_quant_kernels *ds4_kernels_avx512(void) {
    if (!ds4_kernels_avx2() || !__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("avx512vnni") ||
        !__builtin_cpu_supports("avx512vbmi") || !__builtin_cpu_supports("avx512bitalg") ||
        !__builtin_cpu_supports("gfni"))
        return NULL;
    pthread_once(&once, build);
    return &avx512;
}

#else
const ds4_quant_kernels *ds4_kernels_avx512(void) { return 0; }
#endif
