/* gen.c - the values of every synthetic tensor: which distribution, what
 * scale, and how they are encoded into the tensor's type.
 *
 * Scales follow the oracle's tiny models (tests/data/oracle/README.md) so the
 * engine sees the same kind of numbers at any width: projections are drawn
 * with std 1/sqrt(fan_in) (fan_in = ne0), which keeps each product's output
 * near unit RMS; norm weights ~ N(1, 0.1) (KV and compressed-KV norms
 * ~ N(2.5, 0.1) for sharper attention); the router with 2/sqrt(fan_in) so
 * router logits have std ~2, the output head with 3/sqrt(fan_in) so logits have
 * std ~3; HC scales U(0.3, 1), HC biases N(0, 0.6); sinks N(0, 1);
 * compressor position biases N(0, 0.5); selection bias N(0, 0.3).
 *
 * Routed experts are not quantized from floats (a search-based IQ2_XXS encoder
 * would take hours on 78 GB): each block is drawn directly as a random valid
 * block - random grid indices, sign patterns and sub-block scales, codes and
 * min codes - with one super-scale per tensor chosen so the expected RMS is
 * 1/sqrt(fan_in). Q2_K and Q4_K use min code = scale code and
 * dmin = (code range / 2) * d, so every sub-block is centred on zero. */
#include <math.h>
#include <string.h>

#include "quant/quant.h"
#include "synth/synth_internal.h"

uint64_t ds4_synth_tensor_key(uint64_t seed, const char *name) {
    uint64_t h = 0xCBF29CE484222325ull;               /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) h = (h ^ *p) * 0x100000001B3ull;
    return ds4_synth_mix(ds4_synth_mix(seed) ^ h);
}

static int ends(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !memcmp(s + n - m, suffix, m);
}

void ds4_synth_tensor_init(synth_tensor *t, const ds4_tensor_spec *s, const ds4_synth_opts *o) {
    memset(t, 0, sizeof *t);
    t->spec = *s;
    t->type = s->type == DS4_TCLASS_ROUTED ? ds4_synth_routed_type(o->recipe, s->name) : s->type;
    t->key = ds4_synth_tensor_key(o->seed, s->name);
    t->rows = s->ne[1] * s->ne[2];
    t->row_bytes = ds4_row_bytes(t->type, s->ne[0]);
    t->n_expert = o->shape.n_expert;
    const float fan = 1.0f / sqrtf((float)s->ne[0]);
    const char *n = s->name;
    t->kind = SYNTH_NORMAL;
    t->a = 0.0f;
    t->b = fan;
    if (s->type == DS4_TCLASS_ROUTED) { t->kind = SYNTH_BLOCKS; t->a = fan; }
    else if (ends(n, "ffn_gate_tid2eid.weight")) t->kind = SYNTH_TID2EID;
    else if (!strcmp(n, "token_embd.weight")) t->b = 1.0f;
    else if (!strcmp(n, "output.weight")) t->b = 3.0f * fan;
    else if (!strcmp(n, "output_hc_scale.weight")) { t->kind = SYNTH_UNIFORM; t->a = t->b = 0.5f; }
    else if (!strcmp(n, "output_hc_base.weight")) t->b = 0.5f;
    else if (ends(n, "_scale.weight")) { t->kind = SYNTH_UNIFORM; t->a = 0.3f; t->b = 1.0f; }
    else if (ends(n, "_base.weight")) t->b = 0.6f;
    else if (ends(n, "attn_kv_a_norm.weight") || ends(n, "attn_compressor_norm.weight")) { t->a = 2.5f; t->b = 0.1f; }
    else if (ends(n, "norm.weight")) { t->a = 1.0f; t->b = 0.1f; }
    else if (ends(n, "attn_sinks.weight")) t->b = 1.0f;
    else if (ends(n, "compressor_ape.weight")) t->b = 0.5f;
    else if (ends(n, "compressor_gate.weight") || ends(n, "ffn_gate_inp.weight")) t->b = 2.0f * fan;
    else if (ends(n, "exp_probs_b.bias")) t->b = 0.3f;
}

/* Expected RMS of a block whose super-scale is 1 (the codes' distribution is
 * fixed, so this is a constant per type). */
static double unit_rms(uint32_t type) {
    double s2 = 0;
    if (type == DS4_TYPE_IQ2_XXS) {
        double g2 = 0, sc2 = 0;
        for (int G = 0; G < 256; G++)
            for (int j = 0; j < 8; j++) {
                double m = (double)((ds4_iq2xxs_grid[G] >> (8 * j)) & 255);
                g2 += m * m / 2048.0;
            }
        for (int s = 0; s < 16; s++) sc2 += (2.0 * s + 1) * (2.0 * s + 1) / 64.0 / 16.0;
        s2 = g2 * sc2;
    } else if (type == DS4_TYPE_Q2_K) {
        for (int nib = 0; nib < 16; nib++) s2 += (double)((nib % 15 + 1) * (nib % 15 + 1)) / 16.0;
        s2 *= 1.25;            /* E[(c - 1.5)^2], c uniform in 0..3 */
    } else {
        for (int b = 0; b < 256; b++) s2 += (double)((b % 63 + 1) * (b % 63 + 1)) / 256.0;
        s2 *= 21.25;           /* E[(c - 7.5)^2], c uniform in 0..15 */
    }
    return sqrt(s2);
}

static void gen_blocks(const synth_tensor *t, uint64_t row0, uint64_t n, uint8_t *out) {
    const uint64_t bpr = t->spec.ne[0] / DS4_QK_K;
    const uint16_t d = ds4_f32_to_f16((float)(t->a / unit_rms(t->type)));
    const float df = ds4_f16_to_f32(d);
    for (uint64_t b = row0 * bpr; b < (row0 + n) * bpr; b++) {
        const uint64_t k = b * 32;  /* 32 words per block at most (Q4_K uses 17) */
        if (t->type == DS4_TYPE_IQ2_XXS) {
            ds4_block_iq2_xxs *blk = (ds4_block_iq2_xxs *)(void *)out;
            blk->d = d;
            /* Per group of 32: A = four grid indices, B = four 7-bit sign
             * fields and the 4-bit scale: every 64-bit word is valid. */
            for (int g = 0; g < 8; g++) {
                uint64_t r = ds4_synth_rand(t->key, k + (uint64_t)g);
                memcpy((uint8_t *)blk->qs + 8 * g, &r, 8);
            }
            out += sizeof *blk;
        } else if (t->type == DS4_TYPE_Q2_K) {
            ds4_block_q2_K *blk = (ds4_block_q2_K *)(void *)out;
            uint64_t r = ds4_synth_rand(t->key, k);
            for (int s = 0; s < 16; s++) {
                const uint8_t sc = (uint8_t)(((r >> (4 * s)) & 15) % 15 + 1);
                blk->scales[s] = (uint8_t)(sc | sc << 4);
            }
            for (int w = 0; w < 8; w++) {
                uint64_t q = ds4_synth_rand(t->key, k + 1 + (uint64_t)w);
                memcpy(blk->qs + 8 * w, &q, 8);
            }
            blk->d = d;
            blk->dmin = ds4_f32_to_f16(1.5f * df);
            out += sizeof *blk;
        } else {
            ds4_block_q4_K *blk = (ds4_block_q4_K *)(void *)out;
            uint64_t r = ds4_synth_rand(t->key, k);
            uint8_t sc[8];
            for (int j = 0; j < 8; j++) sc[j] = (uint8_t)(((r >> (8 * j)) & 255) % 63 + 1);
            uint8_t *S = blk->scales;
            for (int j = 0; j < 4; j++) {        /* min code = scale code */
                S[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
                S[j + 4] = S[j];
                S[j + 8] = (uint8_t)((sc[j + 4] & 15) | (sc[j + 4] & 15) << 4);
            }
            for (int w = 0; w < 16; w++) {
                uint64_t q = ds4_synth_rand(t->key, k + 1 + (uint64_t)w);
                memcpy(blk->qs + 8 * w, &q, 8);
            }
            blk->d = d;
            blk->dmin = ds4_f32_to_f16(7.5f * df);
            out += sizeof *blk;
        }
    }
}

static void gen_tid2eid(const synth_tensor *t, uint64_t row0, uint64_t n, uint8_t *out) {
    const uint64_t used = t->spec.ne[0];
    int32_t ids[64];
    for (uint64_t row = row0; row < row0 + n; row++) {
        const uint64_t rk = ds4_synth_mix(t->key ^ ds4_synth_mix(row));
        uint64_t got = 0;
        for (uint64_t j = 0; got < used; j++) {
            const int32_t e = (int32_t)(ds4_synth_rand(rk, j) % t->n_expert);
            int dup = 0;
            for (uint64_t i = 0; i < got; i++) dup |= ids[i] == e;
            if (!dup) ids[got++] = e;
        }
        memcpy(out, ids, used * sizeof(int32_t));
        out += used * sizeof(int32_t);
    }
}

/* Q8_0 from F32: the usual amax/127 scale, but a multiply by the inverse of
 * the rounded scale instead of quant's per-element division (this is the hot
 * loop of the dense tensors). |x| / d stays <= 127 * (1 + 2^-11), so the codes
 * need no clamp. */
static void q8_0_row(const float *x, uint8_t *out, uint64_t n) {
    for (uint64_t i = 0; i < n; i += 32, x += 32, out += sizeof(ds4_block_q8_0)) {
        ds4_block_q8_0 *b = (ds4_block_q8_0 *)(void *)out;
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        b->d = ds4_f32_to_f16(amax / 127.0f);
        const float d = ds4_f16_to_f32(b->d), id = d > 0.0f ? 1.0f / d : 0.0f;
        for (int j = 0; j < 32; j++) b->qs[j] = (int8_t)lrintf(x[j] * id);
    }
}

void ds4_synth_gen_rows(const synth_tensor *t, uint64_t row0, uint64_t n, uint8_t *out, float *scratch) {
    if (t->kind == SYNTH_BLOCKS) { gen_blocks(t, row0, n, out); return; }
    if (t->kind == SYNTH_TID2EID) { gen_tid2eid(t, row0, n, out); return; }
    const uint64_t ne0 = t->spec.ne[0];
    for (uint64_t row = row0; row < row0 + n; row++) {
        const uint64_t base = row * ne0;
        for (uint64_t j = 0; j < ne0; j++) {
            const uint64_t r = ds4_synth_rand(t->key, base + j);
            scratch[j] = t->kind == SYNTH_UNIFORM ? t->a + (t->b - t->a) * (float)(r >> 40) * (1.0f / 16777216.0f)
                                                  : t->a + t->b * ds4_synth_normal(r);
        }
        if (t->type == DS4_TYPE_F32) {
            memcpy(out, scratch, ne0 * sizeof(float));
        } else if (t->type == DS4_TYPE_F16) {
            uint16_t h[256];
            for (uint64_t j = 0; j < ne0; j += 256) {
                const uint64_t m = ne0 - j < 256 ? ne0 - j : 256;
                for (uint64_t i = 0; i < m; i++) h[i] = ds4_f32_to_f16(scratch[j + i]);
                memcpy(out + 2 * j, h, m * 2);
            }
        } else {
            q8_0_row(scratch, out, ne0);
        }
        out += t->row_bytes;
    }
}
