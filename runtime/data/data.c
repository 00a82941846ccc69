/* Image-folder datasets (Keras flow_from_directory), stratified splits and a
 * multi-threaded, deterministic batch loader.  See include/vkrun_data.h. */
#include <errno.h>
#include <dirent.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/data_internal.h"

#define MAX_DEPTH 32
#define MAX_THREADS 64

/* ---------------------------------------------------------------- small utilities */

int vkr_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) return 1;
    if (n > MAX_THREADS) return MAX_THREADS;
    return (int)n;
}

int vkr_steps_per_epoch(int n, int batch, int keep_remainder) {
    if (n <= 0 || batch <= 0) return 0;
    return keep_remainder ? (n + batch - 1) / batch : n / batch;
}

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static char *path_join(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    int slash = na > 0 && a[na - 1] != '/';
    char *p = malloc(na + (size_t)slash + nb + 1);
    if (!p) return NULL;
    memcpy(p, a, na);
    if (slash) p[na] = '/';
    memcpy(p + na + (size_t)slash, b, nb + 1);
    return p;
}

static vkr_rng rng_make(uint64_t seed, uint64_t tag, uint64_t a, uint64_t b) {
    vkr_rng r = {vkr_mix64(vkr_mix64(vkr_mix64(vkr_mix64(seed) ^ tag) ^ a) ^ b)};
    return r;
}

static void shuffle_ints(int *a, int n, vkr_rng *r) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)vkr_rng_below(r, (uint64_t)i + 1);
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

enum { TAG_PERM = 0x7065726d, TAG_AUG = 0x61756721, TAG_SPLIT = 0x73706c74 };

/* ---------------------------------------------------------------- dataset */

struct vkr_dataset {
    char *root;
    int nclasses;
    char **classes;
    int *class_size;
    int n;
    char **paths;
    int *labels;
    int nwarn;
    char **warnings;
};

static const char *const k_exts[] = {"jpg", "jpeg", "png", "bmp", "gif", "tga", "psd", "pgm", "ppm", "pnm", "hdr"};
#define N_EXTS ((int)(sizeof k_exts / sizeof k_exts[0]))

static int is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name) return 0;
    for (int i = 0; i < N_EXTS; i++)
        if (strcasecmp(dot + 1, k_exts[i]) == 0) return 1;
    return 0;
}

static void ext_list(char *buf, size_t n) {
    buf[0] = 0;
    for (int i = 0; i < N_EXTS; i++) {
        size_t l = strlen(buf);
        snprintf(buf + l, n - l, "%s%s", i ? " " : "", k_exts[i]);
    }
}

typedef struct {
    char **v;
    int n, cap;
} strvec;

static int sv_push(strvec *s, char *p) { /* takes ownership of p; frees it on failure */
    if (!p) return -1;
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 16;
        char **v = realloc(s->v, sizeof(char *) * (size_t)cap);
        if (!v) {
            free(p);
            return -1;
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = p;
    return 0;
}

static void sv_free(strvec *s) {
    for (int i = 0; i < s->n; i++) free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the non-hidden entries of a folder, sorted with strcmp. */
static vkr_status list_dir(const char *dir, strvec *out) {
    DIR *d = opendir(dir);
    if (!d) return vkr_fail(VKR_ERR_IO, "cannot open folder '%s': %s", dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue; /* hidden, "." and ".." */
        if (sv_push(out, xstrdup(e->d_name))) {
            closedir(d);
            return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory listing '%s'", dir);
        }
    }
    closedir(d);
    if (out->n > 1) qsort(out->v, (size_t)out->n, sizeof(char *), cmp_str);
    return VKR_OK;
}

/* Keras order: os.walk roots sorted by path, files sorted within a root.  We
 * append the files of `dir` (sorted), then recurse into its subfolders in
 * sorted order; collecting (root, files) pairs and sorting by root gives the
 * same order as long as '/' sorts below the characters of names, so sort
 * explicitly instead: collect roots first, sort, then list files. */
static vkr_status collect_roots(const char *dir, int depth, strvec *roots) {
    if (sv_push(roots, xstrdup(dir))) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory");
    if (depth >= MAX_DEPTH) return VKR_OK;
    strvec names = {0};
    vkr_status s = list_dir(dir, &names);
    for (int i = 0; s == VKR_OK && i < names.n; i++) {
        char *p = path_join(dir, names.v[i]);
        if (!p) {
            s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory");
            break;
        }
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) s = collect_roots(p, depth + 1, roots);
        free(p);
    }
    sv_free(&names);
    return s;
}

/* Image-named entries that are not regular files: a dangling or looping symbolic link, a
 * folder named like an image (walked as a subfolder), a FIFO or device.  They become warnings
 * (in `skips`, one message each) instead of silently disappearing. */
static int note_odd_entry(const char *p, strvec *skips) {
    char msg[1100];
    struct stat st;
    if (stat(p, &st) != 0)
        snprintf(msg, sizeof msg, "'%s': %s (a dangling or looping symbolic link?)", p, strerror(errno));
    else if (S_ISDIR(st.st_mode))
        snprintf(msg, sizeof msg, "'%s': a folder named like an image (its images are read as a subfolder)", p);
    else
        snprintf(msg, sizeof msg, "'%s': not a regular file", p);
    return sv_push(skips, xstrdup(msg));
}

static vkr_status collect_class_files(const char *cdir, strvec *files, strvec *skips) {
    strvec roots = {0};
    vkr_status s = collect_roots(cdir, 0, &roots);
    if (s == VKR_OK && roots.n > 1) qsort(roots.v, (size_t)roots.n, sizeof(char *), cmp_str);
    for (int r = 0; s == VKR_OK && r < roots.n; r++) {
        strvec names = {0};
        s = list_dir(roots.v[r], &names);
        for (int i = 0; s == VKR_OK && i < names.n; i++) {
            if (!is_image_name(names.v[i])) continue;
            char *p = path_join(roots.v[r], names.v[i]);
            if (!p) {
                s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory");
                break;
            }
            struct stat st; /* follows symlinks: a link to a regular file counts */
            if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
                if (sv_push(files, p)) s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory");
            } else {
                if (note_odd_entry(p, skips)) s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory");
                free(p);
            }
        }
        sv_free(&names);
    }
    sv_free(&roots);
    return s;
}

static void warn(vkr_dataset *ds, int quiet, const char *fmt, ...) {
    char buf[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (!quiet) fprintf(stderr, "warning: %s\n", buf);
    char **w = realloc(ds->warnings, sizeof(char *) * (size_t)(ds->nwarn + 1));
    if (!w) return;
    ds->warnings = w;
    char *d = xstrdup(buf);
    if (d) ds->warnings[ds->nwarn++] = d;
}

void vkr_dataset_free(vkr_dataset *ds) {
    if (!ds) return;
    free(ds->root);
    for (int c = 0; c < ds->nclasses; c++) free(ds->classes ? ds->classes[c] : NULL);
    free(ds->classes);
    free(ds->class_size);
    for (int i = 0; i < ds->n; i++) free(ds->paths ? ds->paths[i] : NULL);
    free(ds->paths);
    free(ds->labels);
    for (int i = 0; i < ds->nwarn; i++) free(ds->warnings[i]);
    free(ds->warnings);
    free(ds);
}

/* ---- parallel validation */

typedef struct {
    char **paths;
    int n, full;
    int next;
    pthread_mutex_t mu;
    int *result;
    char **msg;
} validate_job;

static void *validate_worker(void *arg) {
    validate_job *j = arg;
    char err[1024];
    for (;;) {
        pthread_mutex_lock(&j->mu);
        int i = j->next < j->n ? j->next++ : -1;
        pthread_mutex_unlock(&j->mu);
        if (i < 0) break;
        int r = vkr__decode_file(j->paths[i], j->full, NULL, NULL, NULL, err, sizeof err);
        j->result[i] = r;
        if (r) j->msg[i] = xstrdup(err);
    }
    return NULL;
}

static vkr_status validate_files(char **paths, int n, int full, int threads, int *result, char **msg) {
    validate_job j = {.paths = paths, .n = n, .full = full, .result = result, .msg = msg};
    pthread_mutex_init(&j.mu, NULL);
    if (threads <= 0) threads = vkr_cpu_count();
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > n) threads = n;
    pthread_t th[MAX_THREADS];
    int started = 0;
    for (int t = 1; t < threads; t++) {
        if (pthread_create(&th[started], NULL, validate_worker, &j) != 0) break;
        started++;
    }
    validate_worker(&j); /* the calling thread works too */
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    pthread_mutex_destroy(&j.mu);
    return VKR_OK;
}

vkr_status vkr_dataset_open(const char *dir, const vkr_dataset_opts *opts, vkr_dataset **out) {
    static const vkr_dataset_opts defaults = {0};
    if (!opts) opts = &defaults;
    if (!out) return vkr_fail(VKR_ERR_INVALID, "vkr_dataset_open: NULL output");
    *out = NULL;
    if (!dir || !*dir) return vkr_fail(VKR_ERR_INVALID, "vkr_dataset_open: empty folder name");
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno == ENOENT) return vkr_fail(VKR_ERR_IO, "dataset folder '%s' does not exist", dir);
        return vkr_fail(VKR_ERR_IO, "cannot access dataset folder '%s': %s", dir, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode))
        return vkr_fail(VKR_ERR_INVALID,
                        "'%s' is not a folder (a dataset is a folder with one subfolder of images per class)", dir);

    char exts[128];
    ext_list(exts, sizeof exts);
    vkr_status s;
    strvec entries = {0}, classes = {0}, odd = {0}; /* odd: image-named entries that are not files */
    strvec *files = NULL;
    int *result = NULL;
    char **msg = NULL;
    vkr_dataset *ds = NULL;
    int stray_images = 0, nall = 0, total = 0;
    char **all = NULL;
    int *lab = NULL;

    s = list_dir(dir, &entries);
    for (int i = 0; s == VKR_OK && i < entries.n; i++) {
        char *p = path_join(dir, entries.v[i]);
        if (!p) {
            s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory");
            break;
        }
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (sv_push(&classes, xstrdup(entries.v[i]))) s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory");
        } else if (is_image_name(entries.v[i])) {
            stray_images++;
        }
        free(p);
    }
    if (s) goto done;
    if (classes.n == 0) {
        if (stray_images)
            s = vkr_fail(VKR_ERR_INVALID,
                         "'%s' has no class subfolders but %d image(s) directly inside: put the images of "
                         "each class in their own subfolder (e.g. %s/cats/, %s/dogs/)",
                         dir, stray_images, dir, dir);
        else
            s = vkr_fail(VKR_ERR_INVALID,
                         "'%s' has no class subfolders (expected one subfolder of images per class, "
                         "e.g. %s/cats/*.jpg, %s/dogs/*.jpg)",
                         dir, dir, dir);
        goto done;
    }
    files = calloc((size_t)classes.n, sizeof(strvec));
    if (!files) {
        s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    int first_empty = -1;
    for (int c = 0; c < classes.n; c++) {
        char *cdir = path_join(dir, classes.v[c]);
        if (!cdir) {
            s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory");
            goto done;
        }
        s = collect_class_files(cdir, &files[c], &odd);
        free(cdir);
        if (s) goto done;
        if (files[c].n == 0 && first_empty < 0) first_empty = c;
        if (files[c].n > 0x3fffffff - total) {
            s = vkr_fail(VKR_ERR_INVALID, "'%s' holds too many files", dir);
            goto done;
        }
        total += files[c].n;
    }
    if (total == 0) {
        s = vkr_fail(VKR_ERR_INVALID, "no images at all in '%s' (%d class folders; accepted extensions: %s)", dir,
                     classes.n, exts);
        goto done;
    }
    if (first_empty >= 0) {
        s = vkr_fail(VKR_ERR_INVALID, "class folder '%s/%s' contains no images (accepted extensions: %s)", dir,
                     classes.v[first_empty], exts);
        goto done;
    }
    if (classes.n == 1 && !opts->allow_single_class) {
        s = vkr_fail(VKR_ERR_INVALID,
                     "'%s' has a single class folder ('%s'): training needs at least 2 classes "
                     "(one subfolder per class)",
                     dir, classes.v[0]);
        goto done;
    }

    /* flatten; `all` owns the path strings from here on */
    all = malloc(sizeof(char *) * (size_t)total);
    lab = malloc(sizeof(int) * (size_t)total);
    if (!all || !lab) {
        free(all);
        all = NULL;
        s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (int c = 0, k = 0; c < classes.n; c++)
        for (int i = 0; i < files[c].n; i++, k++) {
            all[k] = files[c].v[i];
            files[c].v[i] = NULL;
            lab[k] = c;
        }
    nall = total;

    result = calloc((size_t)total, sizeof(int));
    msg = calloc((size_t)total, sizeof(char *));
    ds = calloc(1, sizeof *ds);
    if (!result || !msg || !ds) {
        s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    if (opts->validate != VKR_VALIDATE_NONE)
        validate_files(all, total, opts->validate == VKR_VALIDATE_DECODE, opts->threads, result, msg);

    int bad = 0, first_bad = -1;
    for (int i = 0; i < total; i++)
        if (result[i]) {
            if (first_bad < 0) first_bad = i;
            bad++;
        }
    if (odd.n && opts->strict) {
        char more[64] = "";
        if (odd.n > 1) snprintf(more, sizeof more, " (and %d more)", odd.n - 1);
        s = vkr_fail(VKR_ERR_FORMAT, "%s%s", odd.v[0], more);
        goto done;
    }
    if (bad && opts->strict) {
        char more[64] = "";
        if (bad > 1) snprintf(more, sizeof more, " (and %d more bad files)", bad - 1);
        s = vkr_fail(result[first_bad] == VKR__DECODE_IO       ? VKR_ERR_IO
                     : result[first_bad] == VKR__DECODE_NOMEM ? VKR_ERR_OUT_OF_MEMORY
                                                              : VKR_ERR_FORMAT,
                     "%s%s", msg[first_bad] ? msg[first_bad] : all[first_bad], more);
        goto done;
    }

    ds->root = xstrdup(dir);
    ds->nclasses = classes.n;
    ds->classes = calloc((size_t)classes.n, sizeof(char *));
    ds->class_size = calloc((size_t)classes.n, sizeof(int));
    ds->paths = malloc(sizeof(char *) * (size_t)(total - bad > 0 ? total - bad : 1));
    ds->labels = malloc(sizeof(int) * (size_t)(total - bad > 0 ? total - bad : 1));
    if (!ds->root || !ds->classes || !ds->class_size || !ds->paths || !ds->labels) {
        s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (int c = 0; c < classes.n; c++) {
        ds->classes[c] = classes.v[c];
        classes.v[c] = NULL;
    }
    for (int i = 0; i < odd.n; i++) warn(ds, opts->quiet, "skipping %s", odd.v[i]);
    for (int i = 0; i < total; i++) {
        if (result[i]) {
            warn(ds, opts->quiet, "skipping %s", msg[i] ? msg[i] : all[i]);
            continue;
        }
        ds->paths[ds->n] = all[i];
        all[i] = NULL; /* moved to ds */
        ds->labels[ds->n] = lab[i];
        ds->class_size[lab[i]]++;
        ds->n++;
    }
    for (int c = 0; c < ds->nclasses; c++)
        if (ds->class_size[c] == 0) {
            s = vkr_fail(VKR_ERR_INVALID, "class folder '%s/%s' contains no decodable images (%d file(s) skipped)",
                         dir, ds->classes[c], files[c].n);
            goto done;
        }
    *out = ds;
    ds = NULL;
    s = VKR_OK;

done:
    for (int i = 0; i < nall; i++) {
        if (msg) free(msg[i]);
        free(all[i]);
    }
    free(all);
    free(lab);
    free(msg);
    free(result);
    if (files) {
        for (int c = 0; c < classes.n; c++) sv_free(&files[c]);
        free(files);
    }
    sv_free(&entries);
    sv_free(&classes);
    sv_free(&odd);
    vkr_dataset_free(ds);
    return s;
}

const char *vkr_dataset_root(const vkr_dataset *ds) { return ds ? ds->root : NULL; }
int vkr_dataset_size(const vkr_dataset *ds) { return ds ? ds->n : 0; }
int vkr_dataset_num_classes(const vkr_dataset *ds) { return ds ? ds->nclasses : 0; }
const char *vkr_dataset_class_name(const vkr_dataset *ds, int c) {
    return ds && c >= 0 && c < ds->nclasses ? ds->classes[c] : NULL;
}
int vkr_dataset_class_size(const vkr_dataset *ds, int c) {
    return ds && c >= 0 && c < ds->nclasses ? ds->class_size[c] : 0;
}
const char *vkr_dataset_path(const vkr_dataset *ds, int i) { return ds && i >= 0 && i < ds->n ? ds->paths[i] : NULL; }
int vkr_dataset_label(const vkr_dataset *ds, int i) { return ds && i >= 0 && i < ds->n ? ds->labels[i] : -1; }
int vkr_dataset_num_warnings(const vkr_dataset *ds) { return ds ? ds->nwarn : 0; }
const char *vkr_dataset_warning(const vkr_dataset *ds, int i) {
    return ds && i >= 0 && i < ds->nwarn ? ds->warnings[i] : NULL;
}

vkr_status vkr_dataset_check_classes(const vkr_dataset *ref, const vkr_dataset *other) {
    if (!ref || !other) return vkr_fail(VKR_ERR_INVALID, "vkr_dataset_check_classes: NULL dataset");
    int n = ref->nclasses < other->nclasses ? ref->nclasses : other->nclasses;
    for (int c = 0; c < n; c++)
        if (strcmp(ref->classes[c], other->classes[c]) != 0)
            return vkr_fail(VKR_ERR_INVALID, "class %d is '%s' in '%s' but '%s' in '%s'", c, ref->classes[c],
                            ref->root, other->classes[c], other->root);
    if (ref->nclasses != other->nclasses)
        return vkr_fail(VKR_ERR_INVALID, "'%s' has %d classes but '%s' has %d (first extra class: '%s')", ref->root,
                        ref->nclasses, other->root, other->nclasses,
                        ref->nclasses > n ? ref->classes[n] : other->classes[n]);
    return VKR_OK;
}

static vkr_dataset *subset(const vkr_dataset *ds, const unsigned char *take, int count) {
    vkr_dataset *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->root = xstrdup(ds->root);
    d->nclasses = ds->nclasses;
    d->classes = calloc((size_t)ds->nclasses, sizeof(char *));
    d->class_size = calloc((size_t)ds->nclasses, sizeof(int));
    d->paths = calloc((size_t)(count > 0 ? count : 1), sizeof(char *));
    d->labels = calloc((size_t)(count > 0 ? count : 1), sizeof(int));
    if (!d->root || !d->classes || !d->class_size || !d->paths || !d->labels) goto fail;
    for (int c = 0; c < ds->nclasses; c++)
        if (!(d->classes[c] = xstrdup(ds->classes[c]))) goto fail;
    for (int i = 0; i < ds->n; i++) {
        if (!take[i]) continue;
        d->paths[d->n] = xstrdup(ds->paths[i]);
        if (!d->paths[d->n]) goto fail;
        d->labels[d->n] = ds->labels[i];
        d->class_size[ds->labels[i]]++;
        d->n++;
    }
    return d;
fail:
    vkr_dataset_free(d);
    return NULL;
}

vkr_status vkr_dataset_split(const vkr_dataset *ds, double fraction, uint64_t seed, vkr_dataset **train,
                             vkr_dataset **val) {
    if (!ds || !train || !val) return vkr_fail(VKR_ERR_INVALID, "vkr_dataset_split: NULL argument");
    *train = *val = NULL;
    if (!(fraction >= 0.0 && fraction < 1.0))
        return vkr_fail(VKR_ERR_INVALID, "validation fraction must be in [0, 1), not %g", fraction);
    unsigned char *is_val = calloc((size_t)(ds->n > 0 ? ds->n : 1), 1);
    unsigned char *is_train = calloc((size_t)(ds->n > 0 ? ds->n : 1), 1);
    int *idx = malloc(sizeof(int) * (size_t)(ds->n > 0 ? ds->n : 1));
    if (!is_val || !is_train || !idx) {
        free(is_val);
        free(is_train);
        free(idx);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory");
    }
    int nval = 0;
    for (int c = 0; c < ds->nclasses; c++) {
        int m = 0;
        for (int i = 0; i < ds->n; i++)
            if (ds->labels[i] == c) idx[m++] = i;
        long k = (long)(fraction * m + 0.5);
        if (fraction > 0 && k == 0 && m >= 2) k = 1;
        if (k > m - 1) k = m > 0 ? m - 1 : 0;
        vkr_rng r = rng_make(seed, TAG_SPLIT, (uint64_t)c, 0);
        shuffle_ints(idx, m, &r);
        for (int i = 0; i < m; i++) {
            if (i < k)
                is_val[idx[i]] = 1;
            else
                is_train[idx[i]] = 1;
        }
        nval += (int)k;
    }
    free(idx);
    *train = subset(ds, is_train, ds->n - nval);
    *val = subset(ds, is_val, nval);
    free(is_val);
    free(is_train);
    if (!*train || !*val) {
        vkr_dataset_free(*train);
        vkr_dataset_free(*val);
        *train = *val = NULL;
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory");
    }
    return VKR_OK;
}

/* ---------------------------------------------------------------- loader */

typedef struct {
    int64_t seq; /* global batch number held, -1: none */
    int count;   /* images planned */
    int done;    /* images finished */
    int *idx;    /* dataset indices [batch] */
    unsigned char *ok;
    char **err;  /* message per failed image */
    int *errkind;
    float *img;  /* [batch][C][H][W] */
} slot;

struct vkr_loader {
    const vkr_dataset *ds;
    vkr_loader_opts o;
    int C;
    size_t chw;
    int steps;
    int64_t total; /* batches to produce */
    int S;
    slot *slots;
    pthread_t th[MAX_THREADS];
    int nthreads;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, ready_cv;
    int64_t next_g; /* next batch to hand out */
    int next_j;     /* next image of it */
    int64_t consumed;
    int stop;
    int perm_epoch; /* epoch of perm[] */
    int *perm;
    int *last_idx;
    int last_n;
    int dropped;
    int ph, pw;
};

static int64_t batch_epoch(const vkr_loader *ld, int64_t g) { return ld->o.epoch + g / ld->steps; }

static int batch_count(const vkr_loader *ld, int64_t g) {
    int step = (int)(g % ld->steps);
    int start = step * ld->o.batch;
    int c = ld->ds->n - start;
    return c < ld->o.batch ? c : ld->o.batch;
}

void vkr_epoch_permutation(int n, uint64_t seed, int epoch, int *perm) {
    for (int i = 0; i < n; i++) perm[i] = i;
    vkr_rng r = rng_make(seed, TAG_PERM, (uint64_t)(int64_t)epoch, 0);
    shuffle_ints(perm, n, &r);
}

static void make_perm(const vkr_loader *ld, int epoch, int *perm) {
    int n = ld->ds->n;
    if (ld->o.flags & VKR_LOAD_SHUFFLE) {
        vkr_epoch_permutation(n, ld->o.seed, epoch, perm);
    } else {
        for (int i = 0; i < n; i++) perm[i] = i;
    }
}

/* Called with the mutex held when the first image of batch g is handed out. */
static void setup_slot(vkr_loader *ld, int64_t g) {
    slot *s = &ld->slots[g % ld->S];
    int epoch = (int)batch_epoch(ld, g);
    if (epoch != ld->perm_epoch) {
        make_perm(ld, epoch, ld->perm);
        ld->perm_epoch = epoch;
    }
    s->seq = g;
    s->count = batch_count(ld, g);
    s->done = 0;
    int start = (int)(g % ld->steps) * ld->o.batch;
    for (int j = 0; j < s->count; j++) {
        s->idx[j] = ld->perm[start + j];
        s->ok[j] = 0;
        free(s->err[j]);
        s->err[j] = NULL;
        s->errkind[j] = 0;
    }
}

static void process_image(vkr_loader *ld, slot *s, int j, int64_t g) {
    int i = s->idx[j];
    const char *path = ld->ds->paths[i];
    char err[1024];
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    int r = vkr__decode_file(path, 1, &rgb, &w, &h, err, sizeof err);
    if (r == VKR__DECODE_OK) {
        vkr__aug aug = {0}, *pa = NULL;
        if (ld->o.flags & (VKR_LOAD_FLIP | VKR_LOAD_CROP)) {
            int epoch = (int)batch_epoch(ld, g);
            vkr_rng rr = rng_make(ld->o.seed, TAG_AUG, (uint64_t)(int64_t)epoch, (uint64_t)i);
            /* always draw all values in the same order, so that enabling one
             * augmentation does not change the other's draws */
            int flip = (int)(vkr_rng_next(&rr) >> 63);
            int dy = (int)vkr_rng_below(&rr, (uint64_t)(2 * ld->ph + 1));
            int dx = (int)vkr_rng_below(&rr, (uint64_t)(2 * ld->pw + 1));
            if (ld->o.flags & VKR_LOAD_FLIP) aug.flip = flip;
            if (ld->o.flags & VKR_LOAD_CROP) {
                aug.ph = ld->ph;
                aug.pw = ld->pw;
                aug.dy = dy;
                aug.dx = dx;
            }
            pa = &aug;
        }
        if (vkr__render(rgb, w, h, ld->o.height, ld->o.width, ld->C, ld->o.interp, ld->o.preprocess, pa,
                        s->img + (size_t)j * ld->chw)) {
            r = VKR__DECODE_NOMEM;
            snprintf(err, sizeof err, "'%s': out of memory resizing", path);
        }
        free(rgb);
    }
    if (r == VKR__DECODE_OK) {
        s->ok[j] = 1;
    } else {
        s->ok[j] = 0;
        s->errkind[j] = r;
        s->err[j] = xstrdup(err); /* NULL on OOM: the path is reported instead */
    }
}

static void *loader_worker(void *arg) {
    vkr_loader *ld = arg;
    pthread_mutex_lock(&ld->mu);
    for (;;) {
        while (!ld->stop && !(ld->next_g < ld->total && ld->next_g < ld->consumed + ld->S))
            pthread_cond_wait(&ld->work_cv, &ld->mu);
        if (ld->stop) break;
        int64_t g = ld->next_g;
        int j = ld->next_j;
        if (j == 0) setup_slot(ld, g);
        slot *s = &ld->slots[g % ld->S];
        if (++ld->next_j == s->count) {
            ld->next_g++;
            ld->next_j = 0;
        }
        pthread_mutex_unlock(&ld->mu);
        process_image(ld, s, j, g);
        pthread_mutex_lock(&ld->mu);
        if (++s->done == s->count) pthread_cond_broadcast(&ld->ready_cv);
    }
    pthread_mutex_unlock(&ld->mu);
    return NULL;
}

static void free_slots(vkr_loader *ld) {
    if (!ld->slots) return;
    for (int k = 0; k < ld->S; k++) {
        slot *s = &ld->slots[k];
        if (s->err)
            for (int j = 0; j < ld->o.batch; j++) free(s->err[j]);
        free(s->err);
        free(s->errkind);
        free(s->idx);
        free(s->ok);
        free(s->img);
    }
    free(ld->slots);
    ld->slots = NULL;
}

void vkr_loader_destroy(vkr_loader *ld) {
    if (!ld) return;
    pthread_mutex_lock(&ld->mu);
    ld->stop = 1;
    pthread_cond_broadcast(&ld->work_cv);
    pthread_mutex_unlock(&ld->mu);
    for (int t = 0; t < ld->nthreads; t++) pthread_join(ld->th[t], NULL);
    pthread_cond_destroy(&ld->work_cv);
    pthread_cond_destroy(&ld->ready_cv);
    pthread_mutex_destroy(&ld->mu);
    free_slots(ld);
    free(ld->perm);
    free(ld->last_idx);
    free(ld);
}

vkr_status vkr_loader_create_ex(const vkr_dataset *ds, const vkr_loader_opts *opts, vkr_loader **out) {
    if (!out) return vkr_fail(VKR_ERR_INVALID, "vkr_loader_create: NULL output");
    *out = NULL;
    if (!ds || !opts) return vkr_fail(VKR_ERR_INVALID, "vkr_loader_create: NULL dataset or options");
    vkr_loader_opts o = *opts;
    if (o.channels == 0) o.channels = 3;
    if (o.batch <= 0) return vkr_fail(VKR_ERR_INVALID, "loader: batch size must be > 0, not %d", o.batch);
    if (o.height <= 0 || o.width <= 0 || o.height > VKR_IMAGE_MAX_SIDE || o.width > VKR_IMAGE_MAX_SIDE)
        return vkr_fail(VKR_ERR_INVALID, "loader: bad image size %dx%d", o.width, o.height);
    if (o.channels != 1 && o.channels != 3)
        return vkr_fail(VKR_ERR_INVALID, "loader: channels must be 1 or 3, not %d", o.channels);
    if ((unsigned)o.interp > VKR_INTERP_NEAREST_PIL || (unsigned)o.preprocess > VKR_PREPROC_UNIT)
        return vkr_fail(VKR_ERR_INVALID, "loader: bad interpolation or preprocessing value");
    if (ds->n <= 0) return vkr_fail(VKR_ERR_INVALID, "loader: dataset '%s' is empty", ds->root);
    int steps = vkr_steps_per_epoch(ds->n, o.batch, (o.flags & VKR_LOAD_KEEP_REMAINDER) != 0);
    if (steps == 0)
        return vkr_fail(VKR_ERR_INVALID,
                        "loader: dataset '%s' has %d images, fewer than one batch of %d "
                        "(use a smaller batch or keep the remainder)",
                        ds->root, ds->n, o.batch);
    size_t chw = (size_t)o.channels * (size_t)o.height * (size_t)o.width;
    if (chw * (size_t)o.batch > ((size_t)1 << 34))
        return vkr_fail(VKR_ERR_INVALID, "loader: batch of %d x %zu floats is too large", o.batch, chw);
    int threads = o.threads > 0 ? o.threads : vkr_cpu_count();
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    int S = o.prefetch > 0 ? o.prefetch : 2;
    if (o.prefetch <= 0 && threads > 2 * o.batch) S = (threads + o.batch - 1) / o.batch + 1;
    if (S < 2) S = 2;
    if (S > 64) S = 64;

    vkr_loader *ld = calloc(1, sizeof *ld);
    if (!ld) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory");
    ld->ds = ds;
    ld->o = o;
    ld->C = o.channels;
    ld->chw = chw;
    ld->steps = steps;
    ld->total = o.epochs > 0 ? (int64_t)o.epochs * steps : INT64_MAX;
    ld->S = S;
    ld->perm_epoch = o.epoch - 1; /* forces computing the first permutation */
    ld->ph = (o.height + 4) / 8;
    ld->pw = (o.width + 4) / 8;
    pthread_mutex_init(&ld->mu, NULL);
    pthread_cond_init(&ld->work_cv, NULL);
    pthread_cond_init(&ld->ready_cv, NULL);
    ld->perm = malloc(sizeof(int) * (size_t)ds->n);
    ld->last_idx = malloc(sizeof(int) * (size_t)o.batch);
    ld->slots = calloc((size_t)S, sizeof(slot));
    int ok = ld->perm && ld->last_idx && ld->slots;
    for (int k = 0; ok && k < S; k++) {
        slot *s = &ld->slots[k];
        s->seq = -1;
        s->idx = calloc((size_t)o.batch, sizeof(int));
        s->ok = calloc((size_t)o.batch, 1);
        s->err = calloc((size_t)o.batch, sizeof(char *));
        s->errkind = calloc((size_t)o.batch, sizeof(int));
        s->img = malloc(sizeof(float) * chw * (size_t)o.batch);
        ok = s->idx && s->ok && s->err && s->errkind && s->img;
    }
    if (!ok) {
        vkr_loader_destroy(ld);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "loader: out of memory for %d prefetch batches of %d x %zu floats",
                        S, o.batch, chw);
    }
    for (int t = 0; t < threads; t++) {
        if (pthread_create(&ld->th[ld->nthreads], NULL, loader_worker, ld) != 0) break;
        ld->nthreads++;
    }
    if (ld->nthreads == 0) {
        vkr_loader_destroy(ld);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "loader: cannot start any worker thread");
    }
    *out = ld;
    return VKR_OK;
}

vkr_status vkr_loader_create(const vkr_dataset *ds, int batch, int H, int W, vkr_preprocess pre, int epoch,
                             uint64_t seed, unsigned flags, vkr_loader **out) {
    vkr_loader_opts o = {.batch = batch, .height = H, .width = W, .channels = 3, .preprocess = pre,
                         .epoch = epoch, .epochs = 1, .seed = seed, .flags = flags};
    return vkr_loader_create_ex(ds, &o, out);
}

vkr_status vkr_loader_next(vkr_loader *ld, float *images, float *targets, int *n) {
    if (!ld || !n) return vkr_fail(VKR_ERR_INVALID, "vkr_loader_next: NULL argument");
    *n = 0;
    ld->last_n = 0;
    const int K = ld->ds->nclasses;
    for (;;) {
        pthread_mutex_lock(&ld->mu);
        if (ld->consumed >= ld->total) {
            pthread_mutex_unlock(&ld->mu);
            return VKR_OK;
        }
        int64_t g = ld->consumed;
        slot *s = &ld->slots[g % ld->S];
        while (!(s->seq == g && s->done == s->count)) pthread_cond_wait(&ld->ready_cv, &ld->mu);
        pthread_mutex_unlock(&ld->mu);

        /* the slot is ours until `consumed` moves on */
        vkr_status st = VKR_OK;
        int k = 0;
        for (int j = 0; j < s->count; j++) {
            if (!s->ok[j]) {
                const char *m = s->err[j] ? s->err[j] : ld->ds->paths[s->idx[j]];
                if (ld->o.strict && st == VKR_OK) {
                    st = vkr_fail(s->errkind[j] == VKR__DECODE_NOMEM ? VKR_ERR_OUT_OF_MEMORY
                                  : s->errkind[j] == VKR__DECODE_IO  ? VKR_ERR_IO
                                                                     : VKR_ERR_FORMAT,
                                  "%s", m);
                } else if (!ld->o.strict) {
                    if (!ld->o.quiet) fprintf(stderr, "warning: dropping from batch: %s\n", m);
                    ld->dropped++;
                }
                continue;
            }
            if (images)
                memcpy(images + (size_t)k * ld->chw, s->img + (size_t)j * ld->chw, sizeof(float) * ld->chw);
            if (targets) {
                float *t = targets + (size_t)k * (size_t)K;
                for (int c = 0; c < K; c++) t[c] = 0.0f;
                t[ld->ds->labels[s->idx[j]]] = 1.0f;
            }
            ld->last_idx[k] = s->idx[j];
            k++;
        }
        pthread_mutex_lock(&ld->mu);
        ld->consumed++;
        pthread_cond_broadcast(&ld->work_cv);
        pthread_mutex_unlock(&ld->mu);
        if (st) return st;
        if (k > 0) {
            *n = k;
            ld->last_n = k;
            return VKR_OK;
        }
        /* every image of this batch failed: go on with the next one */
    }
}

const int *vkr_loader_batch_indices(const vkr_loader *ld) { return ld ? ld->last_idx : NULL; }
int vkr_loader_steps_per_epoch(const vkr_loader *ld) { return ld ? ld->steps : 0; }

void vkr_loader_position(const vkr_loader *ld, int *epoch, int *step) {
    if (!ld) return;
    pthread_mutex_t *mu = (pthread_mutex_t *)&ld->mu;
    pthread_mutex_lock(mu);
    int64_t g = ld->consumed;
    pthread_mutex_unlock(mu);
    if (epoch) *epoch = (int)(ld->o.epoch + g / ld->steps);
    if (step) *step = (int)(g % ld->steps);
}

int vkr_loader_num_dropped(const vkr_loader *ld) { return ld ? ld->dropped : 0; }
