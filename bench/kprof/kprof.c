/* bench/kprof/kprof.c - a CUPTI injection library that times every kernel the
 * GPU runs, including the nodes of replayed CUDA graphs, and prints where the
 * time of a decode step goes when the process exits.
 *
 * Why: decode replays one CUDA graph per token, and neither the engine's own
 * DS4_CUDA_PROFILE table (events between launches, only valid with graphs off)
 * nor ncu (caches flushed per kernel) says how a replayed step spends its
 * milliseconds: in kernels, or in the gaps between them. The device image has
 * no nsys, but the CUDA driver loads any library named by CUDA_INJECTION64_PATH
 * and calls its InitializeInjection(), so this needs no change to the engine:
 *
 *   CUDA_INJECTION64_PATH=/path/libds4kprof.so DS4_KPROF_OUT=prof.txt gpu_decode ...
 *
 * (libcupti.so from the same toolkit must be loadable.) The report has, per
 * graph: replays, kernels per replay, the replay's span, the summed kernel time
 * and the idle gaps inside it, the period between replay starts, and the
 * kernels ranked by time per replay, the runtime API calls the host made in
 * that window (what the time between replays is spent on); then the kernels
 * launched outside graphs.
 */
#define _GNU_SOURCE
#include <cupti.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *__cxa_demangle(const char *mangled, char *out, size_t *len, int *status);

typedef struct {
    uint64_t start, end, node;
    uint32_t graph;
    const char *name; /* interned */
} krec;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static krec *g_recs;
static size_t g_n, g_cap;
typedef struct { uint64_t start, end; uint32_t cbid; } arec; /* runtime API calls */
static arec *g_api;
static size_t g_napi, g_capapi;
static uint64_t g_copy_ns[8];
static size_t g_copy_n[8];
static const char **g_keys, **g_names; /* mangled (as CUPTI gives it), shown */
static size_t g_nnames, g_capnames;
static int g_done;

#define BUF_SIZE (8u << 20)

/* CUPTI's name pointers live only as long as the record buffer. */
static const char *intern(const char *s)
{
    if (!s) s = "?";
    for (size_t i = 0; i < g_nnames; i++)
        if (strcmp(g_keys[i], s) == 0) return g_names[i];
    if (g_nnames == g_capnames) {
        g_capnames = g_capnames ? 2 * g_capnames : 256;
        g_keys = realloc(g_keys, g_capnames * sizeof *g_keys);
        g_names = realloc(g_names, g_capnames * sizeof *g_names);
        if (!g_keys || !g_names) abort();
    }
    int st = -1;
    char *d = __cxa_demangle(s, NULL, NULL, &st);
    g_keys[g_nnames] = strdup(s);
    g_names[g_nnames] = (st == 0 && d) ? d : strdup(s);
    if (!g_keys[g_nnames] || !g_names[g_nnames]) abort();
    return g_names[g_nnames++];
}

static void CUPTIAPI buf_request(uint8_t **buf, size_t *size, size_t *max_records)
{
    *buf = aligned_alloc(8, BUF_SIZE);
    *size = *buf ? BUF_SIZE : 0;
    *max_records = 0;
}

static void CUPTIAPI buf_complete(CUcontext ctx, uint32_t stream, uint8_t *buf, size_t size, size_t valid)
{
    (void)ctx, (void)stream, (void)size;
    CUpti_Activity *rec = NULL;
    pthread_mutex_lock(&g_mu);
    while (cuptiActivityGetNextRecord(buf, valid, &rec) == CUPTI_SUCCESS) {
        if (rec->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL || rec->kind == CUPTI_ACTIVITY_KIND_KERNEL) {
            const CUpti_ActivityKernel10 *k = (const CUpti_ActivityKernel10 *)rec;
            if (g_n == g_cap) {
                g_cap = g_cap ? 2 * g_cap : 1u << 16;
                g_recs = realloc(g_recs, g_cap * sizeof *g_recs);
                if (!g_recs) abort();
            }
            g_recs[g_n++] = (krec){ k->start, k->end, k->graphNodeId, k->graphId, intern(k->name) };
        } else if (rec->kind == CUPTI_ACTIVITY_KIND_RUNTIME) {
            const CUpti_ActivityAPI *a = (const CUpti_ActivityAPI *)rec;
            if (g_napi == g_capapi) {
                g_capapi = g_capapi ? 2 * g_capapi : 1u << 16;
                g_api = realloc(g_api, g_capapi * sizeof *g_api);
                if (!g_api) abort();
            }
            g_api[g_napi++] = (arec){ a->start, a->end, a->cbid };
        } else if (rec->kind == CUPTI_ACTIVITY_KIND_MEMCPY) {
            const CUpti_ActivityMemcpy6 *m = (const CUpti_ActivityMemcpy6 *)rec;
            unsigned kind = m->copyKind < 8 ? m->copyKind : 0;
            g_copy_ns[kind] += m->end - m->start;
            g_copy_n[kind]++;
        }
    }
    pthread_mutex_unlock(&g_mu);
    free(buf);
}

static int by_start(const void *a, const void *b)
{
    const krec *x = a, *y = b;
    if (x->graph != y->graph) return x->graph < y->graph ? -1 : 1;
    return x->start < y->start ? -1 : x->start > y->start;
}

typedef struct { const char *name; double ns; size_t n; } kagg;

static int by_ns_desc(const void *a, const void *b)
{
    const kagg *x = a, *y = b;
    return x->ns < y->ns ? 1 : x->ns > y->ns ? -1 : 0;
}

static size_t agg_add(kagg *agg, size_t na, const char *name, double ns)
{
    for (size_t i = 0; i < na; i++)
        if (agg[i].name == name) { agg[i].ns += ns; agg[i].n++; return na; }
    agg[na] = (kagg){ name, ns, 1 };
    return na + 1;
}

static void print_table(FILE *f, kagg *agg, size_t na, size_t limit, double per, double total_ns)
{
    qsort(agg, na, sizeof *agg, by_ns_desc);
    if (na > limit) na = limit;
    fprintf(f, "  %10s %8s %9s %6s  %s\n", "us/replay", "n/replay", "us/call", "%", "kernel");
    for (size_t i = 0; i < na; i++) {
        char nm[121];
        snprintf(nm, sizeof nm, "%s", agg[i].name);
        fprintf(f, "  %10.2f %8.2f %9.2f %5.1f%%  %s\n", agg[i].ns / per / 1e3, agg[i].n / per,
                agg[i].ns / agg[i].n / 1e3, 100.0 * agg[i].ns / total_ns, nm);
    }
}

/* One graph's kernels, sorted by start: split into replays (a node seen twice
 * starts the next replay), then report the replays after the first `skip`. */
static void report_graph(FILE *f, const krec *r, size_t n)
{
    size_t *starts = malloc((n + 1) * sizeof *starts);
    uint64_t *seen = malloc(n * sizeof *seen);
    kagg *agg = calloc(n, sizeof *agg);
    if (!starts || !seen || !agg) abort();
    size_t nrep = 0, nseen = 0;
    for (size_t i = 0; i < n; i++) {
        int dup = 0;
        for (size_t j = 0; j < nseen && !dup; j++) dup = seen[j] == r[i].node;
        if (i == 0 || dup) { starts[nrep++] = i; nseen = 0; }
        seen[nseen++] = r[i].node;
    }
    starts[nrep] = n;
    size_t skip = nrep > 3 ? 1 : 0; /* the first replay uploads the graph */
    double span = 0, busy = 0, ksum = 0, period = 0;
    size_t na = 0, nk = 0;
    for (size_t q = skip; q < nrep; q++) {
        const krec *a = r + starts[q];
        size_t m = starts[q + 1] - starts[q];
        uint64_t lo = a[0].start, hi = a[0].end, cur_lo = a[0].start, cur_hi = a[0].end;
        double b = 0;
        for (size_t i = 0; i < m; i++) {
            ksum += (double)(a[i].end - a[i].start);
            na = agg_add(agg, na, a[i].name, (double)(a[i].end - a[i].start));
            if (a[i].end > hi) hi = a[i].end;
            if (a[i].start > cur_hi) { b += (double)(cur_hi - cur_lo); cur_lo = a[i].start; cur_hi = a[i].end; }
            else if (a[i].end > cur_hi) cur_hi = a[i].end;
        }
        b += (double)(cur_hi - cur_lo);
        span += (double)(hi - lo);
        busy += b;
        nk += m;
        if (q + 1 < nrep) period += (double)(r[starts[q + 1]].start - lo);
    }
    double per = (double)(nrep - skip);
    fprintf(f, "graph %u: %zu replays (%zu timed), %.1f kernels per replay\n", r[0].graph, nrep, nrep - skip, nk / per);
    fprintf(f, "  per replay: span %.1f us, GPU busy %.1f us, idle inside %.1f us (%.1f%%), summed kernel time %.1f us\n",
            span / per / 1e3, busy / per / 1e3, (span - busy) / per / 1e3, 100.0 * (span - busy) / span, ksum / per / 1e3);
    if (nrep - skip > 1)
        fprintf(f, "  period between replay starts: %.1f us (host/other work between replays %.1f us)\n",
                period / (per - 1) / 1e3, period / (per - 1) / 1e3 - span / per / 1e3);
    print_table(f, agg, na, 200, per, ksum);
    /* What the host thread did while these replays ran and between them:
     * runtime API calls that started inside the timed window. */
    const uint64_t wlo = r[starts[skip]].start, whi = r[n - 1].end;
    uint32_t cb[64];
    double cbns[64], cbmax[64];
    size_t cbn[64], ncb = 0;
    for (size_t i = 0; i < g_napi; i++) {
        if (g_api[i].start < wlo || g_api[i].start > whi) continue;
        size_t k = 0;
        while (k < ncb && cb[k] != g_api[i].cbid) k++;
        if (k == ncb) {
            if (ncb == 64) continue;
            cb[k] = g_api[i].cbid, cbns[k] = 0, cbmax[k] = 0, cbn[k] = 0, ncb++;
        }
        const double d = (double)(g_api[i].end - g_api[i].start);
        cbns[k] += d, cbn[k]++;
        if (d > cbmax[k]) cbmax[k] = d;
    }
    if (ncb) fprintf(f, "  runtime API calls in the timed window (per replay): %9s %8s %9s %9s\n", "us", "calls", "us/call", "max us");
    for (size_t k = 0; k < ncb; k++) {
        const char *nm = NULL;
        if (cuptiGetCallbackName(CUPTI_CB_DOMAIN_RUNTIME_API, cb[k], &nm) != CUPTI_SUCCESS || !nm) nm = "?";
        fprintf(f, "    %-40s %9.2f %8.2f %9.2f %9.2f\n", nm, cbns[k] / per / 1e3, cbn[k] / per, cbns[k] / cbn[k] / 1e3,
                cbmax[k] / 1e3);
    }
    /* The last replay in launch order: which kernel of which layer is slow. */
    const krec *a = r + starts[nrep - 1];
    size_t m = starts[nrep] - starts[nrep - 1];
    fprintf(f, "  last replay, in order: start offset, duration (us), kernel\n");
    for (size_t i = 0; i < m; i++) {
        char nm[81];
        snprintf(nm, sizeof nm, "%s", a[i].name);
        fprintf(f, "  %3zu %9.2f %8.2f  %s\n", i, (a[i].start - a[0].start) / 1e3, (a[i].end - a[i].start) / 1e3, nm);
    }
    free(starts);
    free(seen);
    free(agg);
}

static void report(void)
{
    pthread_mutex_lock(&g_mu);
    if (g_done) { pthread_mutex_unlock(&g_mu); return; }
    pthread_mutex_unlock(&g_mu);
    cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
    pthread_mutex_lock(&g_mu);
    g_done = 1;
    const char *path = getenv("DS4_KPROF_OUT");
    FILE *f = path ? fopen(path, "w") : stderr;
    if (!f) f = stderr;
    qsort(g_recs, g_n, sizeof *g_recs, by_start);
    fprintf(f, "kprof: %zu kernel records\n", g_n);
    size_t i = 0;
    while (i < g_n && g_recs[i].graph == 0) i++;
    size_t nongraph = i;
    while (i < g_n) {
        size_t j = i;
        while (j < g_n && g_recs[j].graph == g_recs[i].graph) j++;
        report_graph(f, g_recs + i, j - i);
        i = j;
    }
    if (nongraph) {
        kagg *agg = calloc(nongraph, sizeof *agg);
        if (!agg) abort();
        size_t na = 0;
        double tot = 0;
        for (size_t k = 0; k < nongraph; k++) {
            tot += (double)(g_recs[k].end - g_recs[k].start);
            na = agg_add(agg, na, g_recs[k].name, (double)(g_recs[k].end - g_recs[k].start));
        }
        fprintf(f, "kernels outside graphs: %zu, %.1f ms (columns per whole run)\n", nongraph, tot / 1e6);
        print_table(f, agg, na, 40, 1.0, tot);
        free(agg);
    }
    static const char *ck[8] = { "?", "HtoD", "DtoH", "HtoA", "AtoH", "AtoA", "AtoD", "DtoA" };
    for (int k = 0; k < 8; k++)
        if (g_copy_n[k]) fprintf(f, "memcpy %s: %zu copies, %.1f ms\n", ck[k], g_copy_n[k], g_copy_ns[k] / 1e6);
    if (f != stderr) fclose(f);
    pthread_mutex_unlock(&g_mu);
}

int InitializeInjection(void)
{
    if (cuptiActivityRegisterCallbacks(buf_request, buf_complete) != CUPTI_SUCCESS ||
        cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) != CUPTI_SUCCESS) {
        fprintf(stderr, "kprof: CUPTI activity setup failed; no profile\n");
        return 1;
    }
    cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMCPY);
    cuptiActivityEnable(CUPTI_ACTIVITY_KIND_RUNTIME);
    atexit(report);
    return 1;
}
