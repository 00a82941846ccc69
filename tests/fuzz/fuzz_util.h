/* libFuzzer targets: the input bytes as a file (the readers take paths).  A memfd is a regular
 * file (fstat S_ISREG) that never touches the disk; /proc/self/fd/N is its path. */
#ifndef VKRUN_FUZZ_UTIL_H
#define VKRUN_FUZZ_UTIL_H

#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Writes data to a fresh memfd; path gets its name.  Returns the fd (close it) or -1. */
static inline int fuzz_file(const uint8_t *data, size_t size, char *path, size_t n) {
    int fd = memfd_create("vkrun-fuzz", 0);
    if (fd < 0) return -1;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    snprintf(path, n, "/proc/self/fd/%d", fd);
    return fd;
}

/* A failure must come with a message (the library's promise). */
#define FUZZ_REQUIRE_MESSAGE(s)                                                  \
    do {                                                                         \
        if ((s) != VKR_OK && !vkr_last_error()[0]) {                             \
            fprintf(stderr, "error %s without a message\n", vkr_status_name(s)); \
            abort();                                                             \
        }                                                                        \
    } while (0)

#endif
