/* steering.c - loading a directional-steering file (spec/model.md §6): a raw
 * n_layer × n_embd F32 array. Checked here, once, so the forward pass can
 * apply it blindly: exact size, every value finite, every row of unit norm
 * (within 1e-3; the builder normalises, the engine does not renormalise). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

int ds4_model_load_steering(ds4_model *m, const char *path, ds4_err *err) {
    const size_t L = m->cfg.n_layer, E = m->cfg.n_embd, want = L * E * sizeof(float);
    FILE *f = fopen(path, "rb");
    if (!f) return ds4_errf(err, "%s: cannot open steering file", path);
    float *v = malloc(want + 1);
    size_t got = v ? fread(v, 1, want + 1, f) : 0;
    fclose(f);
    if (!v) return ds4_errf(err, "%s: out of memory", path);
    if (got != want) {
        free(v);
        return ds4_errf(err, "%s: size %zu bytes: expected %zu (%zu layers x %zu floats)", path, got, want, L, E);
    }
    for (size_t il = 0; il < L; il++) {
        double ss = 0;
        for (size_t i = 0; i < E; i++) {
            const float x = v[il * E + i];
            if (!isfinite(x)) {
                free(v);
                return ds4_errf(err, "%s: layer %zu element %zu: %g: expected a finite value", path, il, i, x);
            }
            ss += (double)x * x;
        }
        if (fabs(sqrt(ss) - 1.0) > 1e-3) {
            free(v);
            return ds4_errf(err, "%s: layer %zu: norm %.6f: expected a unit vector", path, il, sqrt(ss));
        }
    }
    free(m->steer);
    m->steer = v;
    return 0;
}
