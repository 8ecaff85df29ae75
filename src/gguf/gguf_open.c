/* gguf_open.c - getting the bytes: mmap a file read-only, or take a caller's
 * buffer, then hand both to the same parser (gguf_parse.c).
 *
 * The mapping is private and read-only; tensors point straight into it, so a
 * model's weights are never copied. Errors from the OS name the path and the
 * system call's reason. */
#include "gguf/gguf_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

gguf_file *gguf_open(const char *path, ds4_err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ds4_errf(err, "%s: open: %s: expected a readable GGUF file", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        ds4_errf(err, "%s: stat: %s: expected a readable GGUF file", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        ds4_errf(err, "%s: file type: not a regular file: expected a GGUF file", path);
        close(fd);
        return NULL;
    }
    uint64_t size = (uint64_t)st.st_size;
    void *map = NULL;
    if (size > 0) {
        if (size > SIZE_MAX) {
            ds4_errf(err, "%s: size: %" PRIu64 " bytes: expected a file that fits in the address space", path, size);
            close(fd);
            return NULL;
        }
        map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            ds4_errf(err, "%s: mmap: %s: expected to map %" PRIu64 " bytes", path, strerror(errno), size);
            close(fd);
            return NULL;
        }
    }
    close(fd); /* the mapping keeps the file alive */
    static const uint8_t empty[1];
    gg_file *g = gg_parse(map ? map : empty, size, path, err);
    if (!g) {
        if (map) munmap(map, (size_t)size);
        return NULL;
    }
    g->map = map;
    g->map_len = size;
    return &g->pub;
}

gguf_file *gguf_open_memory(const void *buf, uint64_t size, const char *name, ds4_err *err) {
    static const uint8_t empty[1];
    if (!buf) size = 0;
    gg_file *g = gg_parse(buf ? buf : empty, size, name, err);
    return g ? &g->pub : NULL;
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    gg_file *g = (gg_file *)f;
    if (g->map) munmap(g->map, (size_t)g->map_len);
    gg_free(g);
}
