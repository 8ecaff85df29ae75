/* harness.h - the minimal C test harness every tests/unit/test_*.c includes.
 *
 * Each test file is one executable. TEST(name) registers a case; main() runs
 * them all (or those named on the command line), prints "ok NAME" or
 * "FAIL NAME: file:line: why" (or "skip NAME: why") per case, and ends with
 * "# <binary>: N passed, N failed[, N skipped]" that tests/run.sh adds up.
 * A failed CHECK stops only its own case (longjmp), so one broken case does not
 * hide the others. Data files are found through t_data_path(), relative to the
 * repository's tests/data directory (DS4_TEST_DATA overrides it). */
#ifndef DS4_TEST_HARNESS_H
#define DS4_TEST_HARNESS_H

#include <math.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*t_fn)(void);
static struct { const char *name; t_fn fn; } t_cases[512];
static int t_ncases;
static jmp_buf t_jmp;
static char t_why[2048];

static void t_register(const char *name, t_fn fn) {
    if (t_ncases < 512) { t_cases[t_ncases].name = name; t_cases[t_ncases].fn = fn; t_ncases++; }
}

#define TEST(name) \
    static void name(void); \
    __attribute__((constructor)) static void t_reg_##name(void) { t_register(#name, name); } \
    static void name(void)

#define T_FAIL(...) do { \
        int t_n_ = snprintf(t_why, sizeof t_why, "%s:%d: ", __FILE__, __LINE__); \
        snprintf(t_why + t_n_, sizeof t_why - (size_t)t_n_, __VA_ARGS__); \
        longjmp(t_jmp, 1); \
    } while (0)

/* Skip the current case (counted and reported as skipped, never as passed). */
#define T_SKIP(...) do { snprintf(t_why, sizeof t_why, __VA_ARGS__); longjmp(t_jmp, 2); } while (0)

#define CHECK(cond) do { if (!(cond)) T_FAIL("check failed: %s", #cond); } while (0)
#define CHECKF(cond, ...) do { if (!(cond)) T_FAIL(__VA_ARGS__); } while (0)
#define CHECK_EQ_INT(a, b) do { long long t_a_ = (long long)(a), t_b_ = (long long)(b); \
        if (t_a_ != t_b_) T_FAIL("%s == %s: got %lld, expected %lld", #a, #b, t_a_, t_b_); } while (0)
#define CHECK_EQ_STR(a, b) do { const char *t_a_ = (a), *t_b_ = (b); \
        if (!t_a_ || !t_b_ || strcmp(t_a_, t_b_) != 0) \
            T_FAIL("%s == %s: got \"%s\", expected \"%s\"", #a, #b, t_a_ ? t_a_ : "(null)", t_b_ ? t_b_ : "(null)"); } while (0)
#define CHECK_NEAR(a, b, tol) do { double t_a_ = (double)(a), t_b_ = (double)(b); \
        if (!(fabs(t_a_ - t_b_) <= (tol))) T_FAIL("%s ~ %s: got %.9g, expected %.9g (tol %g)", #a, #b, t_a_, t_b_, (double)(tol)); } while (0)

/* Path of a file under tests/data (static buffer, valid until the next call). */
__attribute__((unused)) static const char *t_data_path(const char *rel) {
    static char buf[4096];
    const char *root = getenv("DS4_TEST_DATA");
    snprintf(buf, sizeof buf, "%s/%s", root ? root : "tests/data", rel);
    return buf;
}

static int t_passed, t_failed, t_skipped, t_i; /* static: must survive longjmp */

int main(int argc, char **argv) {
    const char *self = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    for (t_i = 0; t_i < t_ncases; t_i++) {
#define i t_i
        if (argc > 1) {
            int want = 0;
            for (int a = 1; a < argc; a++) if (strcmp(argv[a], t_cases[i].name) == 0) want = 1;
            if (!want) continue;
        }
        const int jumped = setjmp(t_jmp);
        if (jumped == 0) {
            t_cases[i].fn();
            printf("ok %s\n", t_cases[i].name);
            t_passed++;
        } else if (jumped == 2) {
            printf("skip %s: %s\n", t_cases[i].name, t_why);
            t_skipped++;
        } else {
            printf("FAIL %s: %s\n", t_cases[i].name, t_why);
            t_failed++;
        }
        fflush(stdout);
#undef i
    }
    if (t_skipped) printf("# %s: %d passed, %d failed, %d skipped\n", self, t_passed, t_failed, t_skipped);
    else printf("# %s: %d passed, %d failed\n", self, t_passed, t_failed);
    return t_failed ? 1 : 0;
}

#endif
