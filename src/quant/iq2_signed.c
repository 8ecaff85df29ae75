/* iq2_signed.c - the IQ2_XXS grid with the signs already applied, plus 64,
 * for the SIMD kernels.
 *
 * Entry (G << 7 | S) holds the 8 weights of grid entry G under sign pattern S
 * (ksigns_iq2xs[S]), each as the unsigned byte 64 + w (w in [-43, 43], so the
 * byte is in [21, 107]). One 8-byte load (or gather lane) fetches a finished
 * sub-group; being unsigned it can be the left operand of the u8 x s8
 * multiply-add instructions directly, and the extra 64 * sum(q8) is removed
 * exactly with the activation block's bsums. 32768 entries x 8 bytes =
 * 256 KiB: it lives in L2, built once on first use. */
#include "quant/quant_impl.h"

#include <pthread.h>

static uint64_t table[256 * 128];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void build(void) {
    for (int G = 0; G < 256; G++)
        for (int S = 0; S < 128; S++) {
            uint64_t v = 0;
            uint8_t signs = ds4_ksigns_iq2xs[S];
            for (int j = 0; j < 8; j++) {
                int m = (int)((ds4_iq2xxs_grid[G] >> (8 * j)) & 255);
                int s = (signs >> j) & 1 ? -m : m;
                v |= (uint64_t)(uint8_t)(64 + s) << (8 * j);
            }
            table[G << 7 | S] = v;
        }
}

const uint64_t *ds4_iq2xxs_grid_off64(void) {
    pthread_once(&once, build);
    return table;
}
