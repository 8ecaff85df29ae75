/* simd_x86.c - placeholder until the AVX2/AVX-512 kernels land. */
#include "quant/quant_impl.h"

const ds4_quant_kernels *ds4_kernels_avx2(void) { return NULL; }
const ds4_quant_kernels *ds4_kernels_avx512(void) { return NULL; }
