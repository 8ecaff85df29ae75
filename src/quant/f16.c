/* f16.c - IEEE binary16 <-> binary32 conversion (spec §3.1).
 *
 * Plain integer bit manipulation, so the result never depends on the FPU's
 * rounding mode, the compiler's float flags or the presence of F16C. Both
 * directions are exact where the spec says so: half->float is lossless
 * (subnormals included), float->half rounds to nearest with ties to even,
 * yields half subnormals, signed zero, ±inf on overflow and a quiet NaN that
 * keeps the sign and the top payload bits (what the F16C instruction does,
 * which the unit test uses as a second opinion). */
#include "quant/quant.h"

#include <string.h>

static float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

float ds4_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (mant << 13));
    if (exp != 0) return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
    if (mant == 0) return bits_f32(sign);
    /* Subnormal: mant * 2^-24; normalise so the leading one becomes implicit. */
    int e = 113;                                  /* biased exponent of 2^-14 */
    while (!(mant & 0x400)) { mant <<= 1; e--; }
    return bits_f32(sign | ((uint32_t)e << 23) | ((mant & 0x3ff) << 13));
}

uint16_t ds4_f32_to_f16(float f) {
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    x &= 0x7fffffffu;
    if (x > 0x7f800000u) return (uint16_t)(sign | 0x7e00 | ((x >> 13) & 0x3ff)); /* NaN, quieted */
    if (x >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);   /* >= 65520 rounds to inf */
    if (x >= 0x38800000u) {                                    /* normal half (>= 2^-14) */
        uint32_t r = x + 0xfffu + ((x >> 13) & 1u);            /* RNE on the 13 dropped bits */
        return (uint16_t)(sign | ((r - (112u << 23)) >> 13));  /* a carry bumps the exponent */
    }
    /* Half subnormal or zero: q = rne(|f| * 2^24) = rne(m * 2^(e-126)). */
    uint32_t e = x >> 23;
    if (e < 102) return sign;                  /* |f| < 2^-25: rounds to zero (never a tie) */
    uint32_t m = (x & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e;                  /* 14..24 */
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) q++;
    return (uint16_t)(sign | q);               /* q == 0x400 is the smallest normal: correct */
}
