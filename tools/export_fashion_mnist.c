/* export_fashion_mnist — writes a Fashion-MNIST transfer-learning task as
 * image folders (one subfolder per class, 28x28 gray PNG files) that
 * `vkrun train` reads like any other dataset.
 *
 *   export_fashion_mnist --out DIR [--task source|target] [--train-per-class N]
 *                        [--test-per-class M] [--seed S] [--src DIR]
 *
 * Source: Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist/
 * {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz).  The gzip files are
 * decompressed with stb_image's zlib (gzip header skipped per RFC 1952, raw
 * deflate, CRC-32 and length checked), IDX magic numbers 2051/2049 checked.
 *
 * Tasks: source = Fashion-MNIST labels 0-4, target = labels 5-9.  Class folders
 * are named "<label>_<name>" (0_tshirt_top 1_trouser 2_pullover 3_dress 4_coat /
 * 5_sandal 6_shirt 7_sneaker 8_bag 9_ankle_boot): the leading digit keeps the
 * strcmp order equal to the label order.  DIR/train/<class>/ gets N images per
 * class drawn from the 60000 training images, DIR/test/<class>/ M per class
 * from the 10000 test images; a file is named after its index in the IDX file
 * (e.g. 03412.png).  Defaults: N = 100 (target) or 1000 (source), M = 500,
 * seed 1.  The sample is a seeded function of (seed, split, label) only.
 *
 * Idempotent: DIR/.export_stamp records the arguments; re-running with the same
 * arguments finds the stamp and returns at once.  Atomic: the task is written
 * to DIR.tmp.PID and renamed into place; a previous export in DIR (one with a
 * stamp) is replaced, any other non-empty DIR is left alone (error). */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vkrun.h"
#include "stb_image.h"       /* stbi_zlib_decode_malloc_guesssize_headerflag (libstb.so) */
#include "stb_image_write.h" /* stbi_write_png (libstb.so) */

#define DEFAULT_SRC "/usr/share/datasets/fashion-mnist"
#define STAMP_NAME ".export_stamp"

static const char *const k_class_dirs[10] = {"0_tshirt_top", "1_trouser", "2_pullover", "3_dress", "4_coat",
                                             "5_sandal",     "6_shirt",   "7_sneaker",  "8_bag",   "9_ankle_boot"};

static void usage(FILE *f) {
    fprintf(f,
            "usage: export_fashion_mnist --out DIR [--task source|target] [--train-per-class N]\n"
            "                            [--test-per-class M] [--seed S] [--src DIR]\n"
            "Writes DIR/train/<class>/*.png and DIR/test/<class>/*.png (28x28 gray) from Debian's\n"
            "dataset-fashion-mnist.  source = labels 0-4 (T-shirt/top, Trouser, Pullover, Dress, Coat),\n"
            "target = labels 5-9 (Sandal, Shirt, Sneaker, Bag, Ankle boot; the default).\n"
            "Defaults: N = 100 for target, 1000 for source (max 6000); M = 500 (max 1000); seed 1;\n"
            "--src " DEFAULT_SRC ".  Re-running with the same arguments does nothing.\n");
}

/* ---------------------------------------------------------------- gzip + IDX */

static uint32_t crc32_buf(const unsigned char *p, size_t n) {
    static uint32_t table[256];
    static int init;
    if (!init) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        init = 1;
    }
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 255] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static uint32_t rd_le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t rd_be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Reads and gunzips a file; returns malloc'ed data or NULL after printing why. */
static unsigned char *gunzip_file(const char *path, size_t *out_len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "export_fashion_mnist: cannot open '%s': %s\n", path, strerror(errno));
        if (errno == ENOENT)
            fprintf(stderr, "  Fashion-MNIST is missing; on Debian: apt-get install dataset-fashion-mnist\n");
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 18 || st.st_size > 0x7fffffffL) {
        fprintf(stderr, "export_fashion_mnist: '%s' is not a plausible gzip file\n", path);
        fclose(f);
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    unsigned char *buf = malloc(n);
    if (!buf || fread(buf, 1, n, f) != n) {
        fprintf(stderr, "export_fashion_mnist: cannot read '%s'\n", path);
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    unsigned char *res = NULL;
    const char *why = NULL;
    /* RFC 1952 member header */
    if (buf[0] != 0x1f || buf[1] != 0x8b || buf[2] != 8) {
        why = "not a gzip file (bad magic or method)";
        goto out;
    }
    unsigned flg = buf[3];
    size_t pos = 10;
    if (flg & 0xe0) {
        why = "reserved gzip flags set";
        goto out;
    }
    if (flg & 4) { /* FEXTRA */
        if (pos + 2 > n) goto trunc;
        pos += 2 + (size_t)(buf[pos] | buf[pos + 1] << 8);
    }
    for (int k = 0; k < 2; k++) /* FNAME, FCOMMENT: zero-terminated */
        if (flg & (k == 0 ? 8 : 16)) {
            while (pos < n && buf[pos]) pos++;
            pos++;
        }
    if (flg & 2) pos += 2; /* FHCRC */
    if (pos + 8 > n) goto trunc;
    uint32_t want_crc = rd_le32(buf + n - 8), want_len = rd_le32(buf + n - 4);
    int got = 0;
    /* The 8 trailer bytes are passed too: stb_image 2.27's inflater fails ("bad
     * huffman code") when the input ends less than 16 bits after the last code;
     * it stops at the final block and ignores what follows. */
    char *data = stbi_zlib_decode_malloc_guesssize_headerflag((const char *)buf + pos, (int)(n - pos),
                                                              want_len && want_len < 0x7fffffffu ? (int)want_len : 1 << 20,
                                                              &got, 0);
    if (!data) {
        why = stbi_failure_reason() ? stbi_failure_reason() : "corrupt deflate data";
        goto out;
    }
    if ((uint32_t)got != want_len || crc32_buf((unsigned char *)data, (size_t)got) != want_crc) {
        stbi_image_free(data);
        why = "length or CRC-32 mismatch (corrupt or truncated)";
        goto out;
    }
    res = (unsigned char *)data;
    *out_len = (size_t)got;
    goto out;
trunc:
    why = "truncated gzip header";
out:
    if (why) fprintf(stderr, "export_fashion_mnist: '%s': %s\n", path, why);
    free(buf);
    return res;
}

typedef struct {
    unsigned char *images; /* whole file; pixels at +16 */
    unsigned char *labels; /* whole file; labels at +8 */
    int n;
} idx_set;

static int load_set(const char *src, const char *prefix, idx_set *s) {
    char pi[4096], pl[4096];
    snprintf(pi, sizeof pi, "%s/%s-images-idx3-ubyte.gz", src, prefix);
    snprintf(pl, sizeof pl, "%s/%s-labels-idx1-ubyte.gz", src, prefix);
    size_t ni = 0, nl = 0;
    s->images = gunzip_file(pi, &ni);
    if (!s->images) return -1;
    s->labels = gunzip_file(pl, &nl);
    if (!s->labels) return -1;
    if (ni < 16 || rd_be32(s->images) != 2051) {
        fprintf(stderr, "export_fashion_mnist: '%s' is not an IDX image file (magic 2051)\n", pi);
        return -1;
    }
    if (nl < 8 || rd_be32(s->labels) != 2049) {
        fprintf(stderr, "export_fashion_mnist: '%s' is not an IDX label file (magic 2049)\n", pl);
        return -1;
    }
    uint32_t n = rd_be32(s->images + 4), rows = rd_be32(s->images + 8), cols = rd_be32(s->images + 12);
    uint32_t nlab = rd_be32(s->labels + 4);
    if (rows != 28 || cols != 28 || n != nlab || n == 0 || n > 1000000 || ni != 16 + (size_t)n * 784 ||
        nl != 8 + (size_t)n) {
        fprintf(stderr, "export_fashion_mnist: '%s'/'%s': unexpected sizes (%u images %ux%u, %u labels)\n", pi, pl,
                n, rows, cols, nlab);
        return -1;
    }
    for (uint32_t i = 0; i < n; i++)
        if (s->labels[8 + i] > 9) {
            fprintf(stderr, "export_fashion_mnist: '%s': label %u out of range at %u\n", pl, s->labels[8 + i], i);
            return -1;
        }
    s->n = (int)n;
    return 0;
}

/* ---------------------------------------------------------------- files */

static int remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(st.st_mode)) return unlink(path);
    DIR *d = opendir(path);
    if (!d) return -1;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        size_t n = strlen(path) + strlen(e->d_name) + 2;
        char *p = malloc(n);
        if (!p) {
            rc = -1;
            break;
        }
        snprintf(p, n, "%s/%s", path, e->d_name);
        if (remove_tree(p)) rc = -1;
        free(p);
    }
    closedir(d);
    if (rmdir(path)) rc = -1;
    return rc;
}

static int mkdir_p(const char *path) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) return -1;
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) && errno != EEXIST) return -1;
            *p = '/';
        }
    if (mkdir(tmp, 0755) && errno != EEXIST) return -1;
    return 0;
}

static char *read_small(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = calloc(1, 4096);
    if (b && fread(b, 1, 4095, f) == 0) b[0] = 0;
    fclose(f);
    return b;
}

static int dir_is_empty(const char *path) {
    DIR *d = opendir(path);
    if (!d) return 0;
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            empty = 0;
            break;
        }
    closedir(d);
    return empty;
}

/* ---------------------------------------------------------------- sampling */

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Writes `count` images of label `label` from set s into dir; returns 0. */
static int export_class(const idx_set *s, int label, int count, uint64_t seed, int split, const char *dir) {
    int *idx = malloc(sizeof(int) * (size_t)s->n);
    if (!idx) return -1;
    int m = 0;
    for (int i = 0; i < s->n; i++)
        if (s->labels[8 + i] == label) idx[m++] = i;
    if (count > m) {
        fprintf(stderr, "export_fashion_mnist: only %d images of label %d in the %s set (asked %d)\n", m, label,
                split ? "test" : "train", count);
        free(idx);
        return -1;
    }
    /* the state starts one golden-ratio step ahead: this draws the sequence the recorded demo
     * figures were made with */
    vkr_rng rng = {vkr_mix64(vkr_mix64(vkr_mix64(seed) ^ (uint64_t)split) ^ (uint64_t)label) + 0x9e3779b97f4a7c15ULL};
    for (int i = 0; i < count; i++) { /* partial Fisher-Yates */
        uint64_t r = vkr_rng_next(&rng);
        int j = i + (int)(r % (uint64_t)(m - i));
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
    qsort(idx, (size_t)count, sizeof(int), cmp_int);
    if (mkdir_p(dir)) {
        fprintf(stderr, "export_fashion_mnist: cannot create '%s': %s\n", dir, strerror(errno));
        free(idx);
        return -1;
    }
    char path[4200];
    for (int k = 0; k < count; k++) {
        snprintf(path, sizeof path, "%s/%05d.png", dir, idx[k]);
        if (!stbi_write_png(path, 28, 28, 1, s->images + 16 + (size_t)idx[k] * 784, 28)) {
            fprintf(stderr, "export_fashion_mnist: cannot write '%s'\n", path);
            free(idx);
            return -1;
        }
    }
    free(idx);
    return 0;
}

static int parse_int(const char *opt, const char *v, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || errno || *end || end == v || x < lo || x > hi) {
        fprintf(stderr, "export_fashion_mnist: %s needs an integer in [%ld, %ld], got '%s'\n", opt, lo, hi,
                v ? v : "(nothing)");
        return -1;
    }
    *out = x;
    return 0;
}

int main(int argc, char **argv) {
    const char *out = NULL, *task = "target", *src = DEFAULT_SRC;
    long ntrain = -1, ntest = 500, seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--out") && v) {
            out = v;
            i++;
        } else if (!strcmp(a, "--task") && v) {
            task = v;
            i++;
        } else if (!strcmp(a, "--src") && v) {
            src = v;
            i++;
        } else if (!strcmp(a, "--train-per-class")) {
            if (parse_int(a, v, 1, 6000, &ntrain)) return 2;
            i++;
        } else if (!strcmp(a, "--test-per-class")) {
            if (parse_int(a, v, 1, 1000, &ntest)) return 2;
            i++;
        } else if (!strcmp(a, "--seed")) {
            if (parse_int(a, v, 0, 0x7fffffffL, &seed)) return 2;
            i++;
        } else {
            fprintf(stderr, "export_fashion_mnist: unknown or incomplete argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!out || !*out) {
        fprintf(stderr, "export_fashion_mnist: --out DIR is required\n");
        usage(stderr);
        return 2;
    }
    int first;
    if (!strcmp(task, "source"))
        first = 0;
    else if (!strcmp(task, "target"))
        first = 5;
    else {
        fprintf(stderr, "export_fashion_mnist: --task must be 'source' or 'target', not '%s'\n", task);
        return 2;
    }
    if (ntrain < 0) ntrain = first == 0 ? 1000 : 100;
    if (strlen(out) > 3000) {
        fprintf(stderr, "export_fashion_mnist: --out path too long\n");
        return 2;
    }
    char outdir[3100];
    snprintf(outdir, sizeof outdir, "%s", out);
    for (size_t l = strlen(outdir); l > 1 && outdir[l - 1] == '/'; l--) outdir[l - 1] = 0;

    char stamp[512];
    snprintf(stamp, sizeof stamp,
             "export_fashion_mnist v1\ntask=%s\ntrain_per_class=%ld\ntest_per_class=%ld\nseed=%ld\nformat=png28gray\n",
             task, ntrain, ntest, seed);
    char stamp_path[3200];
    snprintf(stamp_path, sizeof stamp_path, "%s/%s", outdir, STAMP_NAME);

    struct stat st;
    int exists = stat(outdir, &st) == 0;
    if (exists && !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "export_fashion_mnist: '%s' exists and is not a folder\n", outdir);
        return 1;
    }
    if (exists) {
        char *old = read_small(stamp_path);
        if (old && !strcmp(old, stamp)) {
            printf("export_fashion_mnist: '%s' is up to date (%s task)\n", outdir, task);
            free(old);
            return 0;
        }
        if (!old && !dir_is_empty(outdir)) {
            fprintf(stderr,
                    "export_fashion_mnist: '%s' exists, is not empty and was not written by this tool "
                    "(no %s); choose another --out or remove it\n",
                    outdir, STAMP_NAME);
            return 1;
        }
        free(old);
    }

    idx_set train = {0}, test = {0};
    int rc = 1;
    char tmp[3200], old[3200], dir[3400];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", outdir, (long)getpid());
    snprintf(old, sizeof old, "%s.old.%ld", outdir, (long)getpid());
    if (load_set(src, "train", &train) || load_set(src, "t10k", &test)) goto done;

    remove_tree(tmp);
    if (mkdir_p(tmp)) {
        fprintf(stderr, "export_fashion_mnist: cannot create '%s': %s\n", tmp, strerror(errno));
        goto done;
    }
    for (int sp = 0; sp < 2; sp++)
        for (int c = first; c < first + 5; c++) {
            snprintf(dir, sizeof dir, "%s/%s/%s", tmp, sp ? "test" : "train", k_class_dirs[c]);
            if (export_class(sp ? &test : &train, c, (int)(sp ? ntest : ntrain), (uint64_t)seed, sp, dir))
                goto fail;
        }
    snprintf(dir, sizeof dir, "%s/%s", tmp, STAMP_NAME);
    FILE *f = fopen(dir, "wb");
    if (!f || fputs(stamp, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "export_fashion_mnist: cannot write '%s'\n", dir);
        goto fail;
    }
    if (exists) {
        if (rename(outdir, old)) {
            fprintf(stderr, "export_fashion_mnist: cannot move the old '%s' aside: %s\n", outdir, strerror(errno));
            goto fail;
        }
    }
    if (rename(tmp, outdir)) {
        fprintf(stderr, "export_fashion_mnist: cannot rename '%s' to '%s': %s\n", tmp, outdir, strerror(errno));
        if (exists) rename(old, outdir);
        goto fail;
    }
    if (exists) remove_tree(old);
    printf("export_fashion_mnist: wrote %s task to '%s': train %ld, test %ld images per class (%s ... %s)\n", task,
           outdir, ntrain, ntest, k_class_dirs[first], k_class_dirs[first + 4]);
    rc = 0;
    goto done;
fail:
    remove_tree(tmp);
done:
    /* allocated by stb's zlib (STBI_MALLOC): released with stbi_image_free */
    stbi_image_free(train.images);
    stbi_image_free(train.labels);
    stbi_image_free(test.images);
    stbi_image_free(test.labels);
    return rc;
}
