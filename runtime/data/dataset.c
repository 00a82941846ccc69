/* Image-folder datasets (Keras flow_from_directory) and stratified splits; the batch loader is
 * runtime/data/loader.c.  See include/vkrun_data.h. */
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

vkr_rng vkr__data_rng(uint64_t seed, uint64_t tag, uint64_t a, uint64_t b) {
    vkr_rng r = {vkr_mix64(vkr_mix64(vkr_mix64(vkr_mix64(seed) ^ tag) ^ a) ^ b)};
    return r;
}

void vkr__shuffle_ints(int *a, int n, vkr_rng *r) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)vkr_rng_below(r, (uint64_t)i + 1);
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}


/* ---------------------------------------------------------------- dataset */

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
        if (sv_push(out, vkr__strdup(e->d_name))) {
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
static vkr_status collect_roots(const char *dir, int depth, int follow_top, strvec *roots, strvec *skips) {
    if (sv_push(roots, vkr__strdup(dir))) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory");
    strvec names = {0};
    vkr_status s = list_dir(dir, &names);
    for (int i = 0; s == VKR_OK && i < names.n; i++) {
        char *p = path_join(dir, names.v[i]);
        if (!p) {
            s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory");
            break;
        }
        struct stat st; /* symbolic links to folders are not followed (loops), but those of the top with follow_top */
        char msg[1100];
        if ((depth == 0 && follow_top ? stat(p, &st) : lstat(p, &st)) || !S_ISDIR(st.st_mode)) {
        } else if (depth + 1 < MAX_DEPTH) {
            s = collect_roots(p, depth + 1, follow_top, roots, skips);
        } else {
            snprintf(msg, sizeof msg, "'%s': a folder nested deeper than %d levels (not read)", p, MAX_DEPTH);
            if (sv_push(skips, vkr__strdup(msg))) s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory");
        }
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
    return sv_push(skips, vkr__strdup(msg));
}

static vkr_status collect_class_files(const char *cdir, int follow_top, strvec *files, strvec *skips) {
    strvec roots = {0};
    vkr_status s = collect_roots(cdir, 0, follow_top, &roots, skips);
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
    if (!quiet) vkr_log(VKR_LOG_WARNING, "%s", buf);
    char **w = realloc(ds->warnings, sizeof(char *) * (size_t)(ds->nwarn + 1));
    if (!w) return;
    ds->warnings = w;
    char *d = vkr__strdup(buf);
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
        if (r) j->msg[i] = vkr__strdup(err);
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

static vkr_status check_root(const char *dir) {
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno == ENOENT) return vkr_fail(VKR_ERR_IO, "dataset folder '%s' does not exist", dir);
        return vkr_fail(VKR_ERR_IO, "cannot access dataset folder '%s': %s", dir, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode))
        return vkr_fail(VKR_ERR_INVALID,
                        "'%s' is not a folder (a dataset is a folder with one subfolder of images per class)", dir);
    return VKR_OK;
}

vkr_status vkr_find_images(const char *dir, char ***paths, int *n) {
    if (!dir || !paths || !n) return vkr_fail(VKR_ERR_INVALID, "vkr_find_images: NULL argument");
    *paths = NULL;
    *n = 0;
    vkr_status s = check_root(dir);
    if (s) return s;
    strvec files = {0}, odd = {0};
    s = collect_class_files(dir, 1, &files, &odd); /* its subfolders followed as a dataset's class folders are */
    for (int i = 0; !s && i < odd.n; i++) vkr_log(VKR_LOG_WARNING, "skipping %s", odd.v[i]);
    sv_free(&odd);
    if (s) {
        sv_free(&files);
        return s;
    }
    *paths = files.v; /* the caller owns them now */
    *n = files.n;
    return VKR_OK;
}

/* The state of one vkr_dataset_open: what was listed, found and checked so far. */
typedef struct {
    const char *dir;
    const vkr_dataset_opts *opts;
    char exts[128];
    strvec classes, odd; /* odd: image-named entries that are not files */
    strvec *files;       /* [classes.n] */
    int total;           /* image files in all class folders */
    char **all;          /* [total] paths, owned until moved into the dataset */
    int *lab;            /* [total] */
    int *result;         /* [total] VKR__DECODE_* */
    char **msg;          /* [total] message of a failed check */
} scan;


/* The subfolders of dir are the classes (sorted); images directly inside are only counted. */
static vkr_status find_classes(scan *sc) {
    const char *dir = sc->dir;
    strvec entries = {0};
    int stray_images = 0;
    vkr_status s = list_dir(dir, &entries);
    for (int i = 0; s == VKR_OK && i < entries.n; i++) {
        struct stat st;
        char *p = path_join(dir, entries.v[i]);
        if (!p) {
            s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory");
            break;
        }
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (sv_push(&sc->classes, vkr__strdup(entries.v[i]))) s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory");
        } else if (is_image_name(entries.v[i])) {
            stray_images++;
        }
        free(p);
    }
    sv_free(&entries);
    if (s || sc->classes.n) return s;
    if (stray_images)
        return vkr_fail(VKR_ERR_INVALID,
                        "'%s' has no class subfolders but %d image(s) directly inside: put the images of "
                        "each class in their own subfolder (e.g. %s/cats/, %s/dogs/)",
                        dir, stray_images, dir, dir);
    return vkr_fail(VKR_ERR_INVALID,
                    "'%s' has no class subfolders (expected one subfolder of images per class, "
                    "e.g. %s/cats/*.jpg, %s/dogs/*.jpg)",
                    dir, dir, dir);
}

/* A dataset folder whose class folders are a train/val split (only split names, "train" among
 * them) was almost certainly meant as two datasets. */
static vkr_status check_split_names(const scan *sc) {
    static const char *const k_split[] = {"train", "training", "val", "valid", "validation", "test", "testing"};
    const char *train = NULL, *other = NULL;
    for (int c = 0; c < sc->classes.n; c++) {
        int split = 0;
        for (size_t k = 0; k < sizeof k_split / sizeof k_split[0]; k++)
            if (!strcasecmp(sc->classes.v[c], k_split[k])) split = 1;
        if (!split) return VKR_OK;
        if (!strncasecmp(sc->classes.v[c], "train", 5)) train = sc->classes.v[c];
        else if (!other) other = sc->classes.v[c];
    }
    if (!train || !other) return VKR_OK;
    return vkr_fail(VKR_ERR_INVALID,
                    "'%s' holds the folders '%s' and '%s': it looks like a dataset that is already split, not one "
                    "subfolder per class; name one split: '%s/%s' to train on, '%s/%s' to validate or evaluate on "
                    "(vkrun train --data '%s/%s' --val '%s/%s'; vkrun evaluate MODEL --data '%s/%s'), or accept these "
                    "folders as class names (--split-folders-as-classes)",
                    sc->dir, train, other, sc->dir, train, sc->dir, other, sc->dir, train, sc->dir, other, sc->dir,
                    other);
}

/* Lists every class folder's images, then flattens them into sc->all / sc->lab. */
static vkr_status find_files(scan *sc) {
    const char *dir = sc->dir;
    const strvec *classes = &sc->classes;
    if (classes->n <= 0) return vkr_fail(VKR_ERR_INVALID, "'%s' has no class subfolders", dir);
    sc->files = calloc((size_t)classes->n, sizeof(strvec));
    if (!sc->files) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory");
    int first_empty = -1, total = 0;
    for (int c = 0; c < classes->n; c++) {
        char *cdir = path_join(dir, classes->v[c]);
        if (!cdir) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory");
        vkr_status s = collect_class_files(cdir, 0, &sc->files[c], &sc->odd);
        free(cdir);
        if (s) return s;
        if (sc->files[c].n == 0 && first_empty < 0) first_empty = c;
        if (sc->files[c].n > 0x3fffffff - total) return vkr_fail(VKR_ERR_INVALID, "'%s' holds too many files", dir);
        total += sc->files[c].n;
    }
    if (total == 0)
        return vkr_fail(VKR_ERR_INVALID, "no images at all in '%s' (%d class folders; accepted extensions: %s)%s%s", dir,
                        classes->n, sc->exts, sc->odd.n ? "; skipped: " : "", sc->odd.n ? sc->odd.v[0] : "");
    if (first_empty >= 0) { /* say what was skipped in it (a folder too deep, a dangling link, ...) */
        char *cdir = path_join(dir, classes->v[first_empty]);
        const char *why = NULL;
        for (int i = 0; cdir && !why && i < sc->odd.n; i++)
            if (strstr(sc->odd.v[i], cdir) == sc->odd.v[i] + 1) why = sc->odd.v[i];
        vkr_status s = vkr_fail(VKR_ERR_INVALID, "class folder '%s/%s' contains no images%s%s%s (accepted extensions: %s)",
                                dir, classes->v[first_empty], why ? "; skipped: " : "", why ? why : "", why ? ";" : "",
                                sc->exts);
        free(cdir);
        return s;
    }
    if (classes->n == 1 && !sc->opts->allow_single_class)
        return vkr_fail(VKR_ERR_INVALID,
                        "'%s' has a single class folder ('%s'): training needs at least 2 classes "
                        "(one subfolder per class)",
                        dir, classes->v[0]);
    /* flatten; `all` owns the path strings from here on */
    sc->all = malloc(sizeof(char *) * (size_t)total);
    sc->lab = malloc(sizeof(int) * (size_t)total);
    sc->result = calloc((size_t)total, sizeof(int));
    sc->msg = calloc((size_t)total, sizeof(char *));
    if (!sc->all || !sc->lab || !sc->result || !sc->msg) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory");
    for (int c = 0, k = 0; c < classes->n; c++)
        for (int i = 0; i < sc->files[c].n; i++, k++) {
            sc->all[k] = sc->files[c].v[i];
            sc->files[c].v[i] = NULL;
            sc->lab[k] = c;
        }
    sc->total = total;
    return VKR_OK;
}

/* With opts->strict, the first odd entry or bad file is the error. */
static vkr_status strict_check(const scan *sc, int bad, int first_bad) {
    char more[64] = "";
    if (sc->odd.n) {
        if (sc->odd.n > 1) snprintf(more, sizeof more, " (and %d more)", sc->odd.n - 1);
        return vkr_fail(VKR_ERR_FORMAT, "%s%s", sc->odd.v[0], more);
    }
    if (!bad) return VKR_OK;
    if (bad > 1) snprintf(more, sizeof more, " (and %d more bad files)", bad - 1);
    int r = sc->result[first_bad];
    return vkr_fail(r == VKR__DECODE_IO ? VKR_ERR_IO : r == VKR__DECODE_NOMEM ? VKR_ERR_OUT_OF_MEMORY : VKR_ERR_FORMAT,
                    "%s%s", sc->msg[first_bad] ? sc->msg[first_bad] : sc->all[first_bad], more);
}

/* Moves the classes and the good files into ds; skipped entries become warnings. */
static vkr_status fill_dataset(scan *sc, vkr_dataset *ds, int bad) {
    int keep = sc->total - bad > 0 ? sc->total - bad : 1;
    ds->root = vkr__strdup(sc->dir);
    ds->nclasses = sc->classes.n;
    ds->classes = calloc((size_t)sc->classes.n, sizeof(char *));
    ds->class_size = calloc((size_t)sc->classes.n, sizeof(int));
    ds->paths = malloc(sizeof(char *) * (size_t)keep);
    ds->labels = malloc(sizeof(int) * (size_t)keep);
    if (!ds->root || !ds->classes || !ds->class_size || !ds->paths || !ds->labels)
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory");
    for (int c = 0; c < sc->classes.n; c++) {
        ds->classes[c] = sc->classes.v[c];
        sc->classes.v[c] = NULL;
    }
    for (int i = 0; i < sc->odd.n; i++) warn(ds, sc->opts->quiet, "skipping %s", sc->odd.v[i]);
    for (int i = 0; i < sc->total; i++) {
        if (sc->result[i]) {
            warn(ds, sc->opts->quiet, "skipping %s", sc->msg[i] ? sc->msg[i] : sc->all[i]);
            continue;
        }
        ds->paths[ds->n] = sc->all[i];
        sc->all[i] = NULL; /* moved to ds */
        ds->labels[ds->n] = sc->lab[i];
        ds->class_size[sc->lab[i]]++;
        ds->n++;
    }
    for (int c = 0; c < ds->nclasses; c++)
        if (ds->class_size[c] == 0)
            return vkr_fail(VKR_ERR_INVALID, "class folder '%s/%s' contains no decodable images (%d file(s) skipped)",
                            sc->dir, ds->classes[c], sc->files[c].n);
    return VKR_OK;
}

static void scan_free(scan *sc) {
    for (int i = 0; i < sc->total; i++) {
        free(sc->msg[i]);
        free(sc->all[i]);
    }
    free(sc->all);
    free(sc->lab);
    free(sc->msg);
    free(sc->result);
    if (sc->files)
        for (int c = 0; c < sc->classes.n; c++) sv_free(&sc->files[c]);
    free(sc->files);
    sv_free(&sc->classes);
    sv_free(&sc->odd);
}

vkr_status vkr_dataset_open(const char *dir, const vkr_dataset_opts *opts, vkr_dataset **out) {
    static const vkr_dataset_opts defaults = {0};
    if (!opts) opts = &defaults;
    if (!out) return vkr_fail(VKR_ERR_INVALID, "vkr_dataset_open: NULL output");
    *out = NULL;
    if (!dir || !*dir) return vkr_fail(VKR_ERR_INVALID, "vkr_dataset_open: empty folder name");
    vkr_status s = check_root(dir);
    if (s) return s;

    scan sc = {.dir = dir, .opts = opts};
    ext_list(sc.exts, sizeof sc.exts);
    vkr_dataset *ds = NULL;
    s = find_classes(&sc);
    if (!s && !opts->split_names_ok) s = check_split_names(&sc);
    if (!s) s = find_files(&sc);
    if (!s && !(ds = calloc(1, sizeof *ds))) s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory");
    if (!s) {
        if (opts->validate != VKR_VALIDATE_NONE)
            validate_files(sc.all, sc.total, opts->validate == VKR_VALIDATE_DECODE, opts->threads, sc.result, sc.msg);
        int bad = 0, first_bad = -1;
        for (int i = 0; i < sc.total; i++)
            if (sc.result[i]) {
                if (first_bad < 0) first_bad = i;
                bad++;
            }
        if (opts->strict) s = strict_check(&sc, bad, first_bad);
        if (!s) s = fill_dataset(&sc, ds, bad);
    }
    if (!s) {
        *out = ds;
        ds = NULL;
    }
    scan_free(&sc);
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
    d->root = vkr__strdup(ds->root);
    d->nclasses = ds->nclasses;
    d->classes = calloc((size_t)ds->nclasses, sizeof(char *));
    d->class_size = calloc((size_t)ds->nclasses, sizeof(int));
    d->paths = calloc((size_t)(count > 0 ? count : 1), sizeof(char *));
    d->labels = calloc((size_t)(count > 0 ? count : 1), sizeof(int));
    if (!d->root || !d->classes || !d->class_size || !d->paths || !d->labels) goto fail;
    for (int c = 0; c < ds->nclasses; c++)
        if (!(d->classes[c] = vkr__strdup(ds->classes[c]))) goto fail;
    for (int i = 0; i < ds->n; i++) {
        if (!take[i]) continue;
        d->paths[d->n] = vkr__strdup(ds->paths[i]);
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
        vkr_rng r = vkr__data_rng(seed, TAG_SPLIT, (uint64_t)c, 0);
        vkr__shuffle_ints(idx, m, &r);
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
