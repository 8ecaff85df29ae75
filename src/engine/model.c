/* model.c - loading a model: map the GGUF, read and check the shape, bind the
 * weights, compute the model identity, set up the RoPE tables and the CPU
 * thread pool. Also the shape accessors of engine.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "engine/internal.h"
#ifdef DS4_HAVE_CUDA
#include "engine/cuda/ops.h"
#endif

/* exact 1 / -1 as asked; 0: the backend's choice (the CPU's fast sums gain
 * nothing, so it stays exact; CUDA defaults to its fast kernels). */
static ds4_model *settle_mode(ds4_model *m, const ds4_model_opts *opts) {
    m->exact = opts->exact > 0 ? 1 : opts->exact < 0 ? 0 : !m->be->default_fast;
    return m;
}

int ds4_model_exact(const ds4_model *m) { return m->exact; }

ds4_model *ds4_model_load(const char *path, const ds4_model_opts *opts, ds4_err *err) {
    ds4_model_opts def = {0};
    if (!opts) opts = &def;
    const ds4_backend *be = &ds4_backend_cpu;
    if (opts->gpus) {
        if (opts->backend && strcmp(opts->backend, "cuda") != 0) {
            ds4_errf(err, "--gpus %s: only the CUDA backend uses GPUs (--backend %s given)", opts->gpus, opts->backend);
            return NULL;
        }
        if (!opts->gpus[0]) {
            ds4_errf(err, "--gpus '': empty list (expected device ids like 0,1)");
            return NULL;
        }
        if (strlen(opts->gpus) >= sizeof ((ds4_model *)0)->gpus) {
            ds4_errf(err, "--gpus %.32s...: list too long (expected device ids like 0,1)", opts->gpus);
            return NULL;
        }
#ifdef DS4_HAVE_CUDA
        be = &ds4_backend_cuda; /* no silent CPU fallback when GPUs were named */
#else
        ds4_errf(err, "--gpus %s: this build has no CUDA backend (build with nvcc)", opts->gpus);
        return NULL;
#endif
    }
    if (opts->backend && strcmp(opts->backend, "cpu") != 0) {
#ifdef DS4_HAVE_CUDA
        if (!strcmp(opts->backend, "cuda")) be = &ds4_backend_cuda;
        else
#endif
        {
#ifdef DS4_HAVE_CUDA
            ds4_errf(err, "--backend %s: unknown (expected cpu or cuda)", opts->backend);
#else
            ds4_errf(err, "--backend %s: not available in this build (expected cpu; build with nvcc for cuda)",
                     opts->backend);
#endif
            return NULL;
        }
    }
    ds4_model *m = calloc(1, sizeof *m);
    if (!m) { ds4_errf(err, "out of memory"); return NULL; }
    m->gguf = gguf_open(path, err);
    if (!m->gguf) goto fail;
    if (ds4_config_from_gguf(m->gguf, &m->cfg, err)) goto fail;
    if (ds4_weights_bind(m->gguf, &m->cfg, &m->w, err)) goto fail;

    /* Identity: metadata + tensor table, i.e. every byte before the data. */
    XXH128_hash_t h = XXH3_128bits(m->gguf->base, (size_t)m->gguf->data_offset);
    snprintf(m->identity, sizeof m->identity, "%016llx%016llx", (unsigned long long)h.high64,
             (unsigned long long)h.low64);
    if (m->cfg.name[0]) snprintf(m->name, sizeof m->name, "%s", m->cfg.name);
    else {
        const char *b = strrchr(path, '/');
        snprintf(m->name, sizeof m->name, "%s", b ? b + 1 : path);
    }
    const ds4_config *c = &m->cfg;
    ds4_rope_init(&m->rope_dense, (int)c->n_rot, c->rope_base, 0, 1.0f, c->yarn_orig_ctx, c->yarn_beta_fast,
                  c->yarn_beta_slow);
    ds4_rope_init(&m->rope_comp, (int)c->n_rot, c->compress_rope_base, 1, c->yarn_factor, c->yarn_orig_ctx,
                  c->yarn_beta_fast, c->yarn_beta_slow);
    m->exact = opts->exact >= 0 ? 1 : 0; /* settled below, once the backend is known */
    if (opts->gpus) snprintf(m->gpus, sizeof m->gpus, "%s", opts->gpus);
    m->pool = ds4_pool_new(opts->n_threads);
    if (!m->pool) { ds4_errf(err, "cannot start CPU threads"); goto fail; }
#ifdef DS4_HAVE_CUDA
    /* No --backend: the GPU when one is usable and the weights fit, else the CPU. */
    if (!opts->backend && !opts->gpus && ds4cu_device_count() > 0) {
        ds4_err cerr = {{0}};
        if (ds4_backend_cuda.model_init(m, &cerr) == 0) {
            m->be = &ds4_backend_cuda;
            return settle_mode(m, opts);
        }
        /* Too big for device 0 alone: the layers split across every GPU
         * (what --gpus 0,1,... does), e.g. the q2 model on two 80 GB cards. */
        const int ndev = ds4cu_device_count();
        if (ndev > 1 && (uint32_t)ndev <= c->n_layer) {
            size_t at = 0;
            for (int i = 0; i < ndev && at + 8 < sizeof m->gpus; i++)
                at += (size_t)snprintf(m->gpus + at, sizeof m->gpus - at, i ? ",%d" : "%d", i);
            ds4_err merr = {{0}};
            if (ds4_backend_cuda.model_init(m, &merr) == 0) {
                fprintf(stderr, "ds4: the weights do not fit one GPU; split across %d GPUs (--gpus %s)\n", ndev,
                        m->gpus);
                m->be = &ds4_backend_cuda;
                return settle_mode(m, opts);
            }
            fprintf(stderr, "ds4: not using %d GPUs together (%s)\n", ndev, merr.msg);
            m->gpus[0] = 0;
        }
        fprintf(stderr, "ds4: not using the GPU (%s); running on the CPU\n", cerr.msg);
    }
#endif
    if (be->model_init(m, err)) goto fail;
    m->be = be;
    return settle_mode(m, opts);
fail:
    ds4_model_free(m);
    return NULL;
}

void ds4_model_free(ds4_model *m) {
    if (!m) return;
    if (m->be) m->be->model_free(m);
    ds4_pool_free(m->pool);
    gguf_close(m->gguf);
    free(m->steer);
    free(m);
}

int ds4_model_n_vocab(const ds4_model *m) { return (int)m->cfg.n_vocab; }
int ds4_model_n_layer(const ds4_model *m) { return (int)m->cfg.n_layer; }
int ds4_model_n_embd(const ds4_model *m) { return (int)m->cfg.n_embd; }
const char *ds4_model_name(const ds4_model *m) { return m->name; }
const char *ds4_model_backend(const ds4_model *m) { return m->be->name; }
const char *ds4_model_identity(const ds4_model *m) { return m->identity; }
const void *ds4_model_gguf(const ds4_model *m) { return m->gguf; }
int ds4_model_has_steering(const ds4_model *m) { return m->steer != NULL; }
