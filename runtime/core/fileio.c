/* Atomic file writes: every file vkrun writes (models, optimizer state, .npy, plots, history)
 * goes through vkr__atomic_write, so that a reader never sees a half-written file. */
#define _XOPEN_SOURCE 700 /* realpath */
#include "core/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Removes "<base>.tmp.XXXXXX" files that an earlier, killed save of the same output left in
 * `dir` (mkstemp names: exactly six characters after ".tmp."). */
static void remove_stale_temps(const char *dir, const char *base) {
    DIR *d = opendir(dir);
    if (!d) return;
    size_t bl = strlen(base);
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (strncmp(n, base, bl) || strncmp(n + bl, ".tmp.", 5) || strlen(n + bl + 5) != 6) continue;
        size_t need = strlen(dir) + strlen(n) + 2;
        char *full = malloc(need);
        if (!full) break;
        snprintf(full, need, "%s/%s", dir, n);
        struct stat st;
        if (lstat(full, &st) == 0 && S_ISREG(st.st_mode)) (void)unlink(full);
        free(full);
    }
    closedir(d);
}

static const char *file_kind(mode_t m) {
    return S_ISFIFO(m) ? "a FIFO" : S_ISCHR(m) ? "a character device" : S_ISBLK(m) ? "a block device"
         : S_ISDIR(m) ? "a folder" : S_ISSOCK(m) ? "a socket" : "not a regular file";
}

/* The file a write to `path` must replace: `path` itself, or the target of a symbolic link
 * (written through, so the link stays a link).  Only a regular file is replaced: renaming over
 * a device or a FIFO (`--out /dev/null`) would put a regular file in its place. */
static vkr_status resolve_target(const char *path, char **out) {
    struct stat st;
    *out = NULL;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
        char *real = realpath(path, NULL);
        if (!real)
            return vkr_fail(VKR_ERR_IO, "%s: a symbolic link whose target cannot be resolved: %s", path, strerror(errno));
        *out = real;
    } else if (!(*out = vkr__strdup(path))) {
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    if (stat(*out, &st) == 0 && !S_ISREG(st.st_mode)) {
        vkr_status s = vkr_fail(VKR_ERR_IO, "%s is %s, not a regular file: vkrun writes only regular files (choose "
                                            "another output path)", path, file_kind(st.st_mode));
        free(*out);
        *out = NULL;
        return s;
    }
    return VKR_OK;
}

/* Mode of the new file: the replaced file's permission bits, or 0666 less the umask. */
static mode_t target_mode(const char *target) {
    struct stat st;
    if (stat(target, &st) == 0) return st.st_mode & 07777;
    mode_t um = umask(022);
    umask(um);
    return 0666 & ~um;
}

vkr_status vkr__atomic_write(const char *path, vkr__writer_fn fn, void *ud) {
    char *target;
    vkr_status s = resolve_target(path, &target);
    if (s) return s;
    size_t n = strlen(target);
    char *tmp = malloc(n + 16), *dir = vkr__strdup(target);
    if (!tmp || !dir) {
        free(tmp);
        free(dir);
        free(target);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    const char *tb = strrchr(target, '/');
    char *slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = 0;
    else if (slash) *slash = 0;
    else strcpy(dir, ".");
    remove_stale_temps(dir, tb ? tb + 1 : target);
    snprintf(tmp, n + 16, "%s.tmp.XXXXXX", target);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        s = vkr_fail(VKR_ERR_IO, "%s: cannot create a temporary file next to it: %s", path, strerror(errno));
        goto out;
    }
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(tmp);
        s = vkr_fail(VKR_ERR_IO, "%s: fdopen failed", path);
        goto out;
    }
    s = fn(f, ud);
    if (!s && fflush(f)) s = vkr_fail(VKR_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    if (!s && fsync(fd)) s = vkr_fail(VKR_ERR_IO, "%s: fsync failed: %s", path, strerror(errno));
    if (!s && fchmod(fd, target_mode(target))) s = vkr_fail(VKR_ERR_IO, "%s: chmod failed: %s", path, strerror(errno));
    if (fclose(f) && !s) s = vkr_fail(VKR_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    if (!s && rename(tmp, target)) s = vkr_fail(VKR_ERR_IO, "%s: rename failed: %s", path, strerror(errno));
    if (s) {
        unlink(tmp);
        goto out;
    }
    /* make the rename durable */
    int dfd = open(dir, O_RDONLY);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
out:
    free(tmp);
    free(dir);
    free(target);
    return s;
}

typedef struct {
    const void *data;
    size_t n;
} bytes_w;

static vkr_status write_bytes(FILE *f, void *ud) {
    const bytes_w *b = ud;
    if (b->n && fwrite(b->data, 1, b->n, f) != b->n) return vkr_fail(VKR_ERR_IO, "write failed: %s", strerror(errno));
    return VKR_OK;
}

vkr_status vkr_file_write_atomic(const char *path, const void *data, size_t n) {
    if (!path || (!data && n)) return vkr_fail(VKR_ERR_INVALID, "vkr_file_write_atomic: NULL argument");
    bytes_w b = {data, n};
    return vkr__atomic_write(path, write_bytes, &b);
}

vkr_status vkr_file_check_not_input(const char *in, const char *out) {
    struct stat a, b;
    if (!in || !out || stat(in, &a) != 0 || stat(out, &b) != 0) return VKR_OK;
    if (a.st_dev != b.st_dev || a.st_ino != b.st_ino) return VKR_OK;
    return vkr_fail(VKR_ERR_INVALID, "the output %s is the input %s: choose another output file", out, in);
}

vkr_status vkr_file_check_writable(const char *out) {
    char *target;
    vkr_status rs = resolve_target(out, &target); /* what the writer would refuse, refused before any work */
    if (rs) return rs;
    free(target);
    size_t n = strlen(out);
    char *probe = malloc(n + 32);
    if (!probe) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    const char *slash = strrchr(out, '/');
    if (slash) snprintf(probe, n + 32, "%.*s/.vkrun-probe.XXXXXX", (int)(slash - out), out);
    else snprintf(probe, n + 32, ".vkrun-probe.XXXXXX");
    if (slash == out) snprintf(probe, n + 32, "/.vkrun-probe.XXXXXX");
    int fd = mkstemp(probe);
    vkr_status s = VKR_OK;
    if (fd < 0) s = vkr_fail(VKR_ERR_IO, "cannot write %s: %s (checked before any work)", out, strerror(errno));
    else {
        close(fd);
        unlink(probe);
    }
    free(probe);
    return s;
}
