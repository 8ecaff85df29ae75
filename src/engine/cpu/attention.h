/* attention.h - CPU attention core (see attention.c). */
#ifndef DS4_CPU_ATTENTION_H
#define DS4_CPU_ATTENTION_H

#include "engine/cpu/cpu.h"

typedef struct ds4_attn_args {
    const ds4_config *cfg;
    ds4_pool *pool;
    ds4_layer_kv *kv;
    uint32_t ratio, raw_cap, comp_cap;
    const ds4_rope *rope;          /* this layer's RoPE (compressed rows use it too) */
    int n;                         /* tokens */
    int64_t pos0;
    const float *q;                /* n × H × D, rotated */
    const float *kvrow;            /* n × D, rotated + FP8 */
    const float *cmp_kv, *cmp_gate;   /* n × lanes·D */
    const uint16_t *cmp_ape;
    const float *cmp_norm;
    const float *icmp_kv, *icmp_gate; /* n × 2·128 */
    const uint16_t *icmp_ape;
    const float *icmp_norm;
    const float *qI, *wI;          /* n × IH × 128 (rotated + QAT), n × IH (scaled) */
    const float *sinks;
    float *o;                      /* n × H × D out, inverse RoPE applied */
} ds4_attn_args;

void ds4_cpu_attention(const ds4_attn_args *a);

#endif
