/* simd_neon.c - AArch64 NEON kernels. Not written yet: on ARM the dispatcher
 * falls back to the scalar references (bit-identical, slower). The stub
 * exists so the dispatcher's table of levels is complete on every target. */
#include "quant/quant_impl.h"

const ds4_quant_kernels *ds4_kernels_neon(void) { return NULL; }
