/* runtime.cu - device selection, the stream every launch uses, memory, error
 * reporting, CUDA graphs, the activation hand-over between GPUs and the
 * copy-bandwidth probe of the bench.
 *
 * Several GPUs (--gpus): the backend opens one "slot" per device segment, a
 * device ordinal with its own stream and event. ds4cu_use(slot) makes that
 * device current and points ds4cu_s at its stream, so every kernel wrapper
 * keeps launching on ds4cu_s unchanged. The same device may be opened twice
 * (--gpus 0,0: two segments, two streams on one GPU), which runs the whole
 * split path on a one-GPU machine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/cuda/common.cuh"

cudaStream_t ds4cu_s;
const int64_t *ds4cu_dpos;

/* Slot 0 is device 0's first stream (ds4cu_init); ds4cu_slot adds more. */
#define MAX_SLOTS 32
#define MAX_DEVS 64
static struct { int dev, nth; cudaStream_t s; cudaEvent_t ev; } slots[MAX_SLOTS];
static int n_slots, cur_slot;
static signed char peer_ok[MAX_DEVS][MAX_DEVS]; /* 0 unknown, 1 direct, -1 no */
static int p2p_allowed = -1;                      /* DS4_CUDA_P2P=0: always stage through the host */

extern "C" void ds4cu_set_dpos(const int64_t *d) { ds4cu_dpos = d; }
static char last_err[256];
static int pending; /* an error recorded by ds4cu_after not yet reported */

static int note(cudaError_t e) {
    if (e == cudaSuccess) return 0;
    if (!pending) snprintf(last_err, sizeof last_err, "%s", cudaGetErrorString(e));
    pending = 0;
    return -1;
}

/* DS4_CUDA_PROFILE=1: an event is recorded after every op (no extra
 * synchronization); at each ds4cu_sync the time between consecutive events is
 * added to the op that ended at the later one, so the table printed at exit
 * is GPU time per op (plus any idle gap before it, when the host is slower
 * than the GPU). */
#define PROF_EV 8192
static struct { const char *op; long n; double s; } prof[64];
static cudaEvent_t prof_ev[PROF_EV];
static const char *prof_op[PROF_EV];
static int prof_n, profile = -1, prof_dev;

static void prof_print(void) {
    double tot = 0;
    for (int i = 0; i < 64 && prof[i].op; i++) tot += prof[i].s;
    fprintf(stderr, "ds4 cuda profile (GPU time between consecutive ops, %.3f ms in all):\n", 1e3 * tot);
    for (int i = 0; i < 64 && prof[i].op; i++)
        fprintf(stderr, "  %-16s %9ld calls %10.3f ms %5.1f%% %8.2f us/call\n", prof[i].op, prof[i].n,
                1e3 * prof[i].s, 100 * prof[i].s / (tot > 0 ? tot : 1), 1e6 * prof[i].s / prof[i].n);
}

static void prof_flush(void) {
    if (prof_n > 1) {
        cudaEventSynchronize(prof_ev[prof_n - 1]);
        for (int k = 1; k < prof_n; k++) {
            float ms = 0;
            cudaEventElapsedTime(&ms, prof_ev[k - 1], prof_ev[k]);
            int i = 0;
            while (i < 63 && prof[i].op && strcmp(prof[i].op, prof_op[k])) i++;
            prof[i].op = prof_op[k];
            prof[i].n++;
            prof[i].s += ms / 1e3;
        }
    }
    prof_n = 0;
}

extern "C" void ds4cu_prof_reset(void) {
    prof_n = 0;
    memset(prof, 0, sizeof prof);
}

void ds4cu_after(const char *op) {
    static int sync = -1;
    if (sync < 0) {
        profile = getenv("DS4_CUDA_PROFILE") && atoi(getenv("DS4_CUDA_PROFILE")) > 0;
        sync = getenv("DS4_CUDA_SYNC") && atoi(getenv("DS4_CUDA_SYNC")) > 0;
        if (profile) {
            cudaGetDevice(&prof_dev);
            for (int i = 0; i < PROF_EV; i++) cudaEventCreate(&prof_ev[i]);
            atexit(prof_print);
        }
    }
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess && sync) e = cudaStreamSynchronize(ds4cu_s);
    int dev = 0;
    /* The events belong to one device: with --gpus, the first one's ops are profiled. */
    if (profile && cudaGetDevice(&dev) == cudaSuccess && dev == prof_dev) {
        if (prof_n == PROF_EV) prof_flush();
        prof_op[prof_n] = op;
        cudaEventRecord(prof_ev[prof_n++], ds4cu_s);
    }
    if (e != cudaSuccess && !pending) {
        snprintf(last_err, sizeof last_err, "%s: %s", op, cudaGetErrorString(e));
        pending = 1;
    }
}

extern "C" int ds4cu_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) { cudaGetLastError(); return 0; }
    return n;
}
extern "C" int ds4cu_init(void) {
    if (n_slots) return 0;
    if (ds4cu_device_count() <= 0) { snprintf(last_err, sizeof last_err, "no CUDA device"); return -1; }
    const int s = ds4cu_slot(0, 0);
    return s < 0 ? -1 : ds4cu_use(s);
}

extern "C" int ds4cu_slot(int dev, int nth) {
    for (int i = 0; i < n_slots; i++)
        if (slots[i].dev == dev && slots[i].nth == nth) return i;
    const int count = ds4cu_device_count();
    if (dev < 0 || dev >= count || dev >= MAX_DEVS) {
        snprintf(last_err, sizeof last_err, "device %d does not exist (this machine has %d CUDA device%s)", dev,
                 count, count == 1 ? "" : "s");
        return -1;
    }
    if (n_slots == MAX_SLOTS) {
        snprintf(last_err, sizeof last_err, "more than %d device segments", MAX_SLOTS);
        return -1;
    }
    int prev = 0;
    cudaGetDevice(&prev);
    const int i = n_slots;
    if (note(cudaSetDevice(dev)) || note(cudaStreamCreateWithFlags(&slots[i].s, cudaStreamNonBlocking)) ||
        note(cudaEventCreateWithFlags(&slots[i].ev, cudaEventDisableTiming))) {
        cudaSetDevice(prev);
        return -1;
    }
    slots[i].dev = dev;
    slots[i].nth = nth;
    n_slots++;
    cudaSetDevice(prev);
    return i;
}

extern "C" int ds4cu_use(int slot) {
    if (slot < 0 || slot >= n_slots) { snprintf(last_err, sizeof last_err, "no device slot %d", slot); return -1; }
    if (slot == cur_slot && ds4cu_s == slots[slot].s) return 0;
    if (note(cudaSetDevice(slots[slot].dev))) return -1;
    ds4cu_s = slots[slot].s;
    cur_slot = slot;
    return 0;
}
extern "C" int ds4cu_current(void) { return cur_slot; }
extern "C" int ds4cu_slot_device(int slot) { return slot >= 0 && slot < n_slots ? slots[slot].dev : -1; }

extern "C" void ds4cu_set_p2p(int on) { p2p_allowed = on; }

/* Direct copies between the two slots' devices: the same device, or peer
 * access enabled both ways (once per pair). */
static int direct(int a, int b) {
    if (p2p_allowed < 0) p2p_allowed = !(getenv("DS4_CUDA_P2P") && atoi(getenv("DS4_CUDA_P2P")) == 0);
    if (!p2p_allowed) return 0;
    const int da = slots[a].dev, db = slots[b].dev;
    if (da == db) return 1;
    if (!peer_ok[da][db]) {
        int ab = 0, ba = 0;
        cudaDeviceCanAccessPeer(&ab, da, db);
        cudaDeviceCanAccessPeer(&ba, db, da);
        int ok = ab && ba;
        if (ok) {
            int prev = 0;
            cudaGetDevice(&prev);
            cudaSetDevice(da);
            cudaError_t e1 = cudaDeviceEnablePeerAccess(db, 0);
            cudaSetDevice(db);
            cudaError_t e2 = cudaDeviceEnablePeerAccess(da, 0);
            cudaSetDevice(prev);
            ok = (e1 == cudaSuccess || e1 == cudaErrorPeerAccessAlreadyEnabled) &&
                 (e2 == cudaSuccess || e2 == cudaErrorPeerAccessAlreadyEnabled);
            cudaGetLastError(); /* "already enabled" is not an error here */
        }
        peer_ok[da][db] = peer_ok[db][da] = ok ? 1 : -1;
    }
    return peer_ok[da][db] > 0;
}
extern "C" int ds4cu_direct(int a, int b) { return direct(a, b); }

extern "C" int ds4cu_handover(void *dst, int dst_slot, const void *src, int src_slot, size_t n, void *stage) {
    if (src_slot < 0 || src_slot >= n_slots || dst_slot < 0 || dst_slot >= n_slots) {
        snprintf(last_err, sizeof last_err, "hand-over between slots %d and %d", src_slot, dst_slot);
        return -1;
    }
    cudaStream_t ss = slots[src_slot].s, ds = slots[dst_slot].s;
    if (direct(src_slot, dst_slot)) {
        if (slots[src_slot].dev == slots[dst_slot].dev) {
            if (note(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, ss))) return -1;
        } else if (note(cudaMemcpyPeerAsync(dst, slots[dst_slot].dev, src, slots[src_slot].dev, n, ss))) {
            return -1;
        }
        /* On the source's stream, so its next kernels cannot overwrite src
         * before the copy; the destination's stream waits for it. */
        if (note(cudaEventRecord(slots[src_slot].ev, ss))) return -1;
        return note(cudaStreamWaitEvent(ds, slots[src_slot].ev, 0));
    }
    if (note(cudaMemcpyAsync(stage, src, n, cudaMemcpyDeviceToHost, ss)) || note(cudaStreamSynchronize(ss))) return -1;
    return note(cudaMemcpyAsync(dst, stage, n, cudaMemcpyHostToDevice, ds));
}

extern "C" void *ds4cu_host_alloc(size_t n) {
    void *p = NULL;
    if (note(cudaMallocHost(&p, n ? n : 1))) return NULL;
    return p;
}
extern "C" void ds4cu_host_free(void *p) { if (p) cudaFreeHost(p); }

extern "C" const char *ds4cu_error(void) {
    static char out[256];
    snprintf(out, sizeof out, "%s", last_err);
    last_err[0] = 0;
    return out;
}

extern "C" int ds4cu_check(void) {
    if (pending) { pending = 0; return -1; }
    return note(cudaGetLastError());
}

extern "C" void *ds4cu_malloc(size_t n) {
    void *p = NULL;
    if (note(cudaMalloc(&p, n ? n : 1))) return NULL;
    return p;
}
extern "C" void ds4cu_free(void *p) { if (p) cudaFree(p); }
extern "C" int ds4cu_h2d(void *d, const void *h, size_t n) {
    if (!n) return 0;
    if (note(cudaMemcpyAsync(d, h, n, cudaMemcpyHostToDevice, ds4cu_s))) return -1;
    return note(cudaStreamSynchronize(ds4cu_s));
}
extern "C" int ds4cu_d2h(void *h, const void *d, size_t n) {
    if (!n) return 0;
    if (note(cudaMemcpyAsync(h, d, n, cudaMemcpyDeviceToHost, ds4cu_s))) return -1;
    return note(cudaStreamSynchronize(ds4cu_s));
}
/* Enqueued only: from pinned memory (ds4cu_host_alloc) the copy is truly
 * asynchronous, and the host must leave the source alone until the stream
 * has passed it (a decode step's inputs, rewritten after the step's sync). */
extern "C" int ds4cu_h2d_async(void *d, const void *h, size_t n) {
    return n ? note(cudaMemcpyAsync(d, h, n, cudaMemcpyHostToDevice, ds4cu_s)) : 0;
}
/* Page-locks an existing host buffer so copies into it run at full speed
 * without a staging copy. Failure (e.g. a memlock limit) is not an error:
 * the buffer then stays pageable and copies are just slower. */
extern "C" int ds4cu_host_register(void *p, size_t n) {
    if (cudaHostRegister(p, n, cudaHostRegisterPortable) == cudaSuccess) return 0;
    (void)cudaGetLastError();
    return -1;
}
extern "C" void ds4cu_host_unregister(void *p) { if (p) (void)cudaHostUnregister(p); }
extern "C" int ds4cu_d2d(void *d, const void *s, size_t n) {
    if (!n) return 0;
    return note(cudaMemcpyAsync(d, s, n, cudaMemcpyDeviceToDevice, ds4cu_s));
}
extern "C" int ds4cu_memset(void *d, int v, size_t n) { return n ? note(cudaMemsetAsync(d, v, n, ds4cu_s)) : 0; }
extern "C" int ds4cu_sync(void) {
    if (profile > 0) prof_flush();
    if (pending) { pending = 0; return -1; }
    if (note(cudaGetLastError())) return -1;
    return note(cudaStreamSynchronize(ds4cu_s));
}
extern "C" void *ds4cu_stream(void) { return (void *)ds4cu_s; }

static __global__ void k_fill(float *d, float v, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) d[i] = v;
}
extern "C" void ds4cu_fill(float *d, float v, size_t n) {
    if (n) k_fill<<<cdiv((int64_t)n, 256), 256, 0, ds4cu_s>>>(d, v, n);
}

extern "C" void ds4cu_device_info(char *name, size_t len, int *sms, size_t *mem) {
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, n_slots ? slots[cur_slot].dev : 0) != cudaSuccess) { snprintf(name, len, "?"); *sms = 0; *mem = 0; return; }
    snprintf(name, len, "%s", p.name);
    *sms = p.multiProcessorCount;
    *mem = p.totalGlobalMem;
}

extern "C" double ds4cu_d2d_bandwidth(size_t bytes, int reps) {
    void *a = ds4cu_malloc(bytes), *b = ds4cu_malloc(bytes);
    double bw = 0;
    if (a && b) {
        cudaEvent_t e0, e1;
        cudaEventCreate(&e0);
        cudaEventCreate(&e1);
        cudaMemsetAsync(a, 1, bytes, ds4cu_s);
        cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, ds4cu_s); /* warm-up */
        cudaEventRecord(e0, ds4cu_s);
        for (int i = 0; i < reps; i++) cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, ds4cu_s);
        cudaEventRecord(e1, ds4cu_s);
        cudaEventSynchronize(e1);
        float ms = 0;
        cudaEventElapsedTime(&ms, e0, e1);
        /* a copy reads and writes each byte: count both, as the weights are only read */
        bw = 2.0 * (double)bytes * reps / (ms / 1e3);
        cudaEventDestroy(e0);
        cudaEventDestroy(e1);
    }
    ds4cu_free(a);
    ds4cu_free(b);
    return bw;
}

extern "C" int ds4cu_graph_begin(void) {
    return note(cudaStreamBeginCapture(ds4cu_s, cudaStreamCaptureModeThreadLocal));
}
extern "C" void *ds4cu_graph_end(void) {
    cudaGraph_t g;
    if (note(cudaStreamEndCapture(ds4cu_s, &g))) return NULL;
    cudaGraphExec_t ex;
    if (note(cudaGraphInstantiate(&ex, g, 0))) { cudaGraphDestroy(g); return NULL; }
    cudaGraphDestroy(g);
    return (void *)ex;
}
/* Measured on the H100 (8-layer model, 194 kernel nodes): 4-7 us of host
 * time per launch, whether uploaded ahead or instantiated for device launch;
 * the 150 us a CUPTI trace shows are the tracer's own. */
extern "C" int ds4cu_graph_launch(void *g) { return note(cudaGraphLaunch((cudaGraphExec_t)g, ds4cu_s)); }
extern "C" void ds4cu_graph_free(void *g) { if (g) cudaGraphExecDestroy((cudaGraphExec_t)g); }
