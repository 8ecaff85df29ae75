/* pool.h - a fixed thread pool for data-parallel loops.
 *
 * ds4_pool_for splits [0, n) into contiguous ranges (up to 4 per thread, at
 * least `grain` long, fixed by n, grain and the thread count), which the
 * workers and the calling thread claim until none is left, and returns when
 * all are done. Each range is one call, computed the same whichever thread
 * makes it, so results do not depend on the thread count. Not re-entrant:
 * one loop at a time per pool. */
#ifndef DS4_CPU_POOL_H
#define DS4_CPU_POOL_H

#include <stdint.h>

typedef struct ds4_pool ds4_pool;
typedef void (*ds4_range_fn)(void *ctx, int64_t begin, int64_t end);

ds4_pool *ds4_pool_new(int n_threads); /* 0 = number of online CPUs */
void ds4_pool_free(ds4_pool *p);
int ds4_pool_size(const ds4_pool *p);
/* Run fn over [0, n) split into ranges; `grain` is the minimum range size. */
void ds4_pool_for(ds4_pool *p, int64_t n, int64_t grain, ds4_range_fn fn, void *ctx);

#endif
