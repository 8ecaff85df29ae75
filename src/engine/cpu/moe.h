/* moe.h - CPU mixture of experts: router (§4.7.1) and routed experts (§4.7.2). */
#ifndef DS4_CPU_MOE_H
#define DS4_CPU_MOE_H

#include "engine/cpu/cpu.h"

/* moe[t] = Σ_k down_{S_k}(Q8_K(silu(min(gate,c))·clamp(up,±c)·w_k)) for n tokens. */
void ds4_cpu_moe(const ds4_model *m, uint32_t il, const float *xf, const int32_t *tokens, int n, float *moe);

/* Expert selection and weights for one token (exposed for traces and tests). */
void ds4_route(const ds4_model *m, uint32_t il, const float *logits_router, int32_t token, int32_t *sel, float *w);

#endif
