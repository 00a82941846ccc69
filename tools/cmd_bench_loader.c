/* vkrun bench --loader DIR: images/s of the data loader alone (decoding, resizing, augmentation,
 * preprocessing on its worker threads; no device), without and with augmentation, side by side in
 * one run, per thread count -- to compare with a training step's images/s. */
#include "cli.h"
#include "vkrun_data.h"

#include <cJSON.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Images/s of `epochs` epochs through a loader with o (threads set by the caller). */
static vkr_status measure(const vkr_dataset *ds, const vkr_loader_opts *o, double *ips) {
    vkr_loader *ld;
    vkr_status s = vkr_loader_create_ex(ds, o, &ld);
    if (s) return s;
    float *x = malloc(sizeof(float) * (size_t)o->batch * 3 * o->height * o->width);
    if (!x) {
        vkr_loader_destroy(ld);
        return VKR_ERR_OUT_OF_MEMORY;
    }
    long images = 0;
    int n;
    double t0 = now_s();
    while (!(s = vkr_loader_next(ld, x, NULL, &n)) && n > 0) images += n;
    double secs = now_s() - t0;
    free(x);
    vkr_loader_destroy(ld);
    *ips = secs > 0 ? images / secs : 0;
    return s;
}

static int bad_value(const char *flag, const char *v) {
    fprintf(stderr, "vkrun bench: %s got \"%s\"\n", flag, v);
    return 2;
}

int cmd_bench_loader(int argc, char **argv) {
    const char *dir = NULL, *spec = "flip,rotate=15,zoom=0.1,shift=0.1,brightness=0.2,contrast=0.2";
    int H = 224, W = 224, batch = 32, epochs = 2, json = 0, maxthreads = vkr_cpu_count();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--loader") && has) dir = argv[++i];
        else if (!strcmp(a, "--augment") && has) spec = argv[++i];
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--size") && has) {
            if (sscanf(argv[++i], "%dx%d", &H, &W) != 2 || H <= 0 || W <= 0) return bad_value("--size wants HxW", argv[i]);
        } else if (!strcmp(a, "--batch") && has) {
            if ((batch = atoi(argv[++i])) <= 0) return bad_value("--batch wants a positive integer", argv[i]);
        } else if (!strcmp(a, "--epochs") && has) {
            if ((epochs = atoi(argv[++i])) <= 0) return bad_value("--epochs wants a positive integer", argv[i]);
        } else if (!strcmp(a, "--threads") && has) {
            if ((maxthreads = atoi(argv[++i])) <= 0) return bad_value("--threads wants a positive integer", argv[i]);
        } else return cli_unknown_option("bench", a, usage_bench);
    }
    vkr_loader_opts o = {.batch = batch, .height = H, .width = W, .channels = 3, .preprocess = VKR_PREPROC_CAFFE,
                         .epochs = epochs, .seed = 1, .flags = VKR_LOAD_SHUFFLE | VKR_LOAD_KEEP_REMAINDER, .quiet = 1};
    vkr_augment aug;
    vkr_status s = vkr_augment_parse(spec, &aug);
    if (s) return cli_error("bench --augment", s);
    vkr_dataset *ds;
    vkr_dataset_opts dopts = {.validate = VKR_VALIDATE_HEADER, .quiet = 1};
    if ((s = vkr_dataset_open(dir, &dopts, &ds))) return cli_error(dir, s);
    cJSON *J = cJSON_CreateObject(), *rows = cJSON_AddArrayToObject(J, "results");
    cJSON_AddStringToObject(J, "folder", dir);
    cJSON_AddNumberToObject(J, "images", vkr_dataset_size(ds));
    char canon[256];
    cJSON_AddStringToObject(J, "augment", vkr_augment_format(&aug, canon, sizeof canon));
    if (!json)
        printf("loader on %s: %d images, %dx%d, batch %d, %d epochs per figure, augmentation %s\n%8s %14s %14s %7s\n",
               dir, vkr_dataset_size(ds), H, W, batch, epochs, canon, "threads", "plain img/s", "augment img/s",
               "ratio");
    for (int t = 1; t <= maxthreads && !s; t++) {
        double plain = 0, augmented = 0;
        o.threads = t;
        o.augment = (vkr_augment){0};
        if ((s = measure(ds, &o, &plain))) break;
        o.augment = aug;
        if ((s = measure(ds, &o, &augmented))) break;
        cJSON *r = cJSON_CreateObject();
        cJSON_AddNumberToObject(r, "threads", t);
        cJSON_AddNumberToObject(r, "plain_images_per_s", plain);
        cJSON_AddNumberToObject(r, "augment_images_per_s", augmented);
        cJSON_AddItemToArray(rows, r);
        if (!json) printf("%8d %14.1f %14.1f %7.2f\n", t, plain, augmented, plain > 0 ? augmented / plain : 0);
    }
    vkr_dataset_free(ds);
    if (!s && json) {
        char *txt = cJSON_Print(J);
        printf("%s\n", txt);
        free(txt);
    }
    cJSON_Delete(J);
    return s ? cli_error("bench --loader", s) : 0;
}
