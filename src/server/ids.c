/* ids.c - unguessable ids (spec/server.md §11.2): tool-call ids are keys into
 * the replay map, so they come from the OS random source; if that fails, from
 * time, pid, a counter and an address, which is still unique per process. */
#include "server/server.h"

#include <stdio.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

void ds4s_random_id(char *out, size_t cap, const char *prefix, int nbytes) {
    unsigned char b[32];
    if (nbytes > 32) nbytes = 32;
    if (getrandom(b, (size_t)nbytes, 0) != nbytes) {
        static unsigned long ctr;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned long long x = (unsigned long long)ts.tv_nsec ^ ((unsigned long long)ts.tv_sec << 20) ^
                               ((unsigned long long)getpid() << 40) ^ __atomic_add_fetch(&ctr, 1, __ATOMIC_RELAXED) ^
                               (unsigned long long)(uintptr_t)out;
        for (int i = 0; i < nbytes; i++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            b[i] = (unsigned char)x;
        }
    }
    size_t o = (size_t)snprintf(out, cap, "%s", prefix);
    for (int i = 0; i < nbytes && o + 2 < cap; i++) o += (size_t)snprintf(out + o, cap - o, "%02x", b[i]);
}
