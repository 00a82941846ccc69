/* Tests of the atomic writer (runtime/core/fileio.c) through which every output goes (models,
 * optimizer state, .npy, plots, history): content, kept permissions, symbolic links, stale
 * temporaries, and a process killed in the middle of a write. */
#define _DEFAULT_SOURCE /* mknod, makedev */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/model_internal.h"
#include "test_util.h"

static char g_dir[64];

static const char *tmp_path(const char *name) {
    static char buf[4][600];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static int file_is(const char *path, const char *text) {
    char buf[64] = "";
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = 0;
    return !strcmp(buf, text);
}

static void test_atomic_write(void) {
    const char *out = tmp_path("atomic.txt"), *link = tmp_path("atomic_link.txt");
    mode_t old = umask(027);
    vkr_status s = vkr_file_write_atomic(out, "one", 3);
    struct stat st = {0};
    int st_ok = stat(out, &st) == 0;
    CHECK(!s && file_is(out, "one") && st_ok && (st.st_mode & 0777) == 0640,
          "new file gets 0666 less the umask (0640): mode %o", (unsigned)(st.st_mode & 0777));
    umask(old);
    chmod(out, 0600);
    s = vkr_file_write_atomic(out, "two", 3);
    st_ok = stat(out, &st) == 0;
    CHECK(!s && file_is(out, "two") && st_ok && (st.st_mode & 0777) == 0600, "an existing 0600 file stays 0600: mode %o",
          (unsigned)(st.st_mode & 0777));
    unlink(link);
    int ok = symlink(out, link) == 0;
    s = vkr_file_write_atomic(link, "three", 5);
    CHECK(ok && !s && lstat(link, &st) == 0 && S_ISLNK(st.st_mode) && file_is(out, "three"),
          "through a symbolic link: the link stays, its target is replaced %s", s ? vkr_last_error() : "");
    unlink(link);
    ok = symlink(tmp_path("no_such_dir/x"), link) == 0;
    s = vkr_file_write_atomic(link, "four", 4);
    CHECK(ok && s == VKR_ERR_IO && strstr(vkr_last_error(), link), "dangling symbolic link refused: %s", vkr_last_error());
    unlink(link);
    char stale[700], other[700];
    snprintf(stale, sizeof stale, "%s.tmp.Ab12Cd", out);
    snprintf(other, sizeof other, "%s.tmp.keep", out);
    FILE *f = fopen(stale, "wb"), *g = fopen(other, "wb");
    if (f) fclose(f);
    if (g) fclose(g);
    s = vkr_file_write_atomic(out, "five", 4);
    CHECK(!s && file_is(out, "five") && access(stale, F_OK) != 0 && access(other, F_OK) == 0,
          "a killed save's OUT.tmp.XXXXXX is removed by the next save (other files kept)");
    unlink(other);
}

/* A writer that dies (SIGKILL) half way through its output. */
static vkr_status die_half_way(FILE *f, void *ud) {
    (void)ud;
    fputs("NEW CONT", f); /* half of "NEW CONTENT" */
    fflush(f);
    kill(getpid(), SIGKILL);
    return VKR_OK;
}

static int count_temps(const char *out) {
    int n = 0;
    char p[700];
    snprintf(p, sizeof p, "ls %s.tmp.* 2>/dev/null | wc -l", out);
    FILE *f = popen(p, "r");
    if (f) {
        if (fscanf(f, "%d", &n) != 1) n = -1;
        pclose(f);
    }
    return n;
}

static void test_killed_mid_write(void) {
    const char *out = tmp_path("killed.txt");
    CHECK_OK(vkr_file_write_atomic(out, "OLD", 3), "write the old content");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        vkr__atomic_write(out, die_half_way, NULL);
        _exit(0); /* not reached */
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the writer was killed in the middle of the write");
    CHECK(file_is(out, "OLD") && count_temps(out) == 1,
          "after the kill the output is the old file, whole (the half-written temporary is beside it)");
    CHECK_OK(vkr_file_write_atomic(out, "NEW CONTENT", 11), "the next save");
    CHECK(file_is(out, "NEW CONTENT") && count_temps(out) == 0, "the next save replaces it and removes the leftover");
}

/* Only a regular file (or a symbolic link to one) is replaced: a FIFO, a character device, a
 * folder or a link to one of them is refused with a message naming it, and stays as it was. */
static void test_special_files(void) {
    const char *fifo = tmp_path("fifo"), *dev = tmp_path("null_dev"), *link = tmp_path("fifo_link");
    struct stat st;
    int ok = mkfifo(fifo, 0600) == 0;
    vkr_status s = vkr_file_write_atomic(fifo, "x", 1);
    CHECK(ok && s == VKR_ERR_IO && strstr(vkr_last_error(), fifo) && strstr(vkr_last_error(), "FIFO") &&
              lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode) && count_temps(fifo) == 0,
          "a FIFO is not replaced: %s", s ? vkr_last_error() : "(written)");
    ok = symlink(fifo, link) == 0;
    s = vkr_file_write_atomic(link, "x", 1);
    CHECK(ok && s == VKR_ERR_IO && strstr(vkr_last_error(), link) && lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode),
          "a link to a FIFO is refused: %s", s ? vkr_last_error() : "(written)");
    s = vkr_file_write_atomic(g_dir, "x", 1);
    CHECK(s == VKR_ERR_IO && stat(g_dir, &st) == 0 && S_ISDIR(st.st_mode), "a folder is refused: %s",
          s ? vkr_last_error() : "(written)");
    /* a character device like /dev/null (made here when root, never the real one) */
    if (mknod(dev, S_IFCHR | 0600, makedev(1, 3)) == 0) {
        s = vkr_file_write_atomic(dev, "x", 1);
        CHECK(s == VKR_ERR_IO && strstr(vkr_last_error(), "character device") && lstat(dev, &st) == 0 &&
                  S_ISCHR(st.st_mode),
              "a character device is not replaced: %s", s ? vkr_last_error() : "(written)");
    } else {
        printf("  (not root: the character-device case is covered by the FIFO one)\n");
    }
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/vkrun-test-fileio-XXXXXX");
    if (!mkdtemp(g_dir)) {
        printf("FAIL cannot create a temporary folder\n");
        return 1;
    }
    test_atomic_write();
    test_killed_mid_write();
    test_special_files();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd)) printf("  could not remove %s\n", g_dir);
    return test_finish();
}
