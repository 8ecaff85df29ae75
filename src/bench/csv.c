/* csv.c - ds4-bench's CSV: one row per frontier, the columns named in the
 * header so a spreadsheet or a script can read them without this source. */
#include <inttypes.h>

#include "bench/bench.h"

int ds4_bench_write_csv(FILE *f, const ds4_bench_row *rows, size_t n) {
    fprintf(f, "frontier,prefill_tps,decode_tps,kv_bytes,weight_bytes_per_token,bandwidth_fraction\n");
    for (size_t i = 0; i < n; i++) {
        const ds4_bench_row *r = &rows[i];
        fprintf(f, "%d,%.3f,%.3f,%" PRIu64 ",%" PRIu64 ",%.6f\n", r->frontier, r->prefill_tps, r->decode_tps,
                r->kv_bytes, r->weight_bytes, r->bw_fraction);
    }
    return ferror(f) ? -1 : 0;
}
