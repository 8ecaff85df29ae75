/* golden.c - DS4GOLD1 reader/writer (see golden.h). Sizes are checked against
 * the file length before anything is allocated. */
#include "engine/golden.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ds4_golden_read(const char *path, ds4_golden *g, ds4_err *err) {
    memset(g, 0, sizeof *g);
    FILE *f = fopen(path, "rb");
    if (!f) return ds4_errf(err, "%s: cannot open", path);
    uint8_t hdr[40];
    if (fread(hdr, 1, 40, f) != 40 || memcmp(hdr, "DS4GOLD1", 8) != 0) {
        fclose(f);
        return ds4_errf(err, "%s: magic: expected \"DS4GOLD1\"", path);
    }
    uint32_t u[8];
    memcpy(u, hdr + 8, sizeof u);
    if (u[0] != 1) { fclose(f); return ds4_errf(err, "%s: version %u: expected 1", path, u[0]); }
    g->n_vocab = u[1]; g->n_tokens = u[2]; g->n_pos = u[3]; g->n_greedy = u[4]; g->flags = u[5];
    fseek(f, 0, SEEK_END);
    const long fsize = ftell(f);
    fseek(f, 40, SEEK_SET);
    const uint64_t V = g->n_vocab;
    const uint64_t want = 40 + 4 * ((uint64_t)g->n_tokens + g->n_pos + 2 * (uint64_t)g->n_pos * V + g->n_greedy +
                                    (uint64_t)g->n_greedy * V);
    if (V == 0 || V > (1u << 24) || g->n_tokens > (1u << 24) || g->n_pos > g->n_tokens || g->n_greedy > 4096 ||
        (uint64_t)fsize != want) {
        fclose(f);
        return ds4_errf(err, "%s: size %ld: expected %llu from its header", path, fsize, (unsigned long long)want);
    }
    g->tokens = malloc(4 * (size_t)g->n_tokens + 4);
    g->positions = malloc(4 * (size_t)g->n_pos + 4);
    g->prefill = malloc(4 * (size_t)(g->n_pos * V) + 4);
    g->incremental = malloc(4 * (size_t)(g->n_pos * V) + 4);
    g->greedy_tokens = malloc(4 * (size_t)g->n_greedy + 4);
    g->greedy_logits = malloc(4 * (size_t)(g->n_greedy * V) + 4);
    int ok = g->tokens && g->positions && g->prefill && g->incremental && g->greedy_tokens && g->greedy_logits &&
             fread(g->tokens, 4, g->n_tokens, f) == g->n_tokens && fread(g->positions, 4, g->n_pos, f) == g->n_pos &&
             fread(g->prefill, 4, g->n_pos * V, f) == g->n_pos * V &&
             fread(g->incremental, 4, g->n_pos * V, f) == g->n_pos * V &&
             fread(g->greedy_tokens, 4, g->n_greedy, f) == g->n_greedy &&
             fread(g->greedy_logits, 4, g->n_greedy * V, f) == g->n_greedy * V;
    fclose(f);
    if (!ok) { ds4_golden_free(g); return ds4_errf(err, "%s: read error", path); }
    return 0;
}

int ds4_golden_write(const char *path, const ds4_golden *g, ds4_err *err) {
    FILE *f = fopen(path, "wb");
    if (!f) return ds4_errf(err, "%s: cannot create", path);
    uint32_t u[8] = {1, g->n_vocab, g->n_tokens, g->n_pos, g->n_greedy, 3, 0, 0};
    const size_t V = g->n_vocab;
    int ok = fwrite("DS4GOLD1", 1, 8, f) == 8 && fwrite(u, 4, 8, f) == 8 &&
             fwrite(g->tokens, 4, g->n_tokens, f) == g->n_tokens && fwrite(g->positions, 4, g->n_pos, f) == g->n_pos &&
             fwrite(g->prefill, 4, g->n_pos * V, f) == g->n_pos * V &&
             fwrite(g->incremental, 4, g->n_pos * V, f) == g->n_pos * V &&
             fwrite(g->greedy_tokens, 4, g->n_greedy, f) == g->n_greedy &&
             fwrite(g->greedy_logits, 4, g->n_greedy * V, f) == g->n_greedy * V;
    if (fclose(f) != 0) ok = 0;
    if (!ok) return ds4_errf(err, "%s: write error", path);
    return 0;
}

void ds4_golden_free(ds4_golden *g) {
    free(g->tokens); free(g->positions); free(g->prefill); free(g->incremental);
    free(g->greedy_tokens); free(g->greedy_logits);
    memset(g, 0, sizeof *g);
}
