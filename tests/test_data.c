/* Tests of include/vkrun_data.h's datasets: folders, odd entries, splits, shuffling, the
 * threaded loader (decoding itself: test_image.c).  No Vulkan.  Uses ../shared/data/cats_dogs
 * when present (timing only). */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "data_fixture.h"
#include "test_util.h"
#include "vkrun_data.h"

#include "stb_image_write.h" /* declarations; implementation in libstb.so */

static void test_odd_entries(void) {
    unsigned char px[3 * 4 * 4];
    memset(px, 90, sizeof px);
    mkdirs("odd/a/folder.jpg");
    mkdirs("odd/b");
    write_png("odd/a/good.png", 4, 4, 3, px);
    write_png("odd/a/folder.jpg/inner.png", 4, 4, 3, px);
    write_png("odd/b/good.png", 4, 4, 3, px);
    char p[512], q[512];
    path_of(p, sizeof p, "odd/a/dangling.png");
    path_of(q, sizeof q, "odd/a/no-such-target.png");
    int ok = symlink(q, p) == 0;
    path_of(p, sizeof p, "odd/a/loop.jpg");
    ok &= symlink(p, p) == 0;
    path_of(p, sizeof p, "odd");
    vkr_dataset_opts o = {.quiet = 1};
    vkr_dataset *ds = NULL;
    vkr_status s = vkr_dataset_open(p, &o, &ds);
    int nw = s ? -1 : vkr_dataset_num_warnings(ds);
    int named = nw == 3;
    const char *want[] = {"dangling.png", "folder.jpg", "loop.jpg"};
    for (int i = 0; named && i < 3; i++) named = contains(vkr_dataset_warning(ds, i), want[i]);
    CHECK(ok && !s && named && vkr_dataset_size(ds) == 3,
          "dangling and looping links and a folder named like an image: 3 warnings naming them, 3 images kept (%d)", nw);
    for (int i = 0; i < nw; i++) printf("  warning: %s\n", vkr_dataset_warning(ds, i));
    vkr_dataset_free(ds);
    o.strict = 1;
    s = vkr_dataset_open(p, &o, &ds);
    CHECK(s == VKR_ERR_FORMAT && contains(vkr_last_error(), "dangling.png"), "strict: the first odd entry is an error: %s",
          vkr_last_error());
    if (!s) vkr_dataset_free(ds);
}

/* mutated PNG/JPEG/BMP bytes: each must decode or fail cleanly (run under ASan in CI) */

static void test_dataset_mixed(void) {
    char dir[512];
    path_of(dir, sizeof dir, "mixed");
    vkr_dataset_opts o = {.quiet = 1};
    vkr_dataset *ds = NULL;
    vkr_status s = vkr_dataset_open(dir, &o, &ds);
    CHECK_OK(s, "open mixed dataset (bad files skipped)");
    if (s) return;
    CHECK(vkr_dataset_num_classes(ds) == 3 && !strcmp(vkr_dataset_class_name(ds, 0), "a_formats") &&
              !strcmp(vkr_dataset_class_name(ds, 1), "b_bad") && !strcmp(vkr_dataset_class_name(ds, 2), "c_third"),
          "3 classes in strcmp order");
    CHECK(vkr_dataset_class_size(ds, 0) == 9 && vkr_dataset_class_size(ds, 1) == 2 &&
              vkr_dataset_class_size(ds, 2) == 1 && vkr_dataset_size(ds) == 12,
          "counts 9/2/1 (hidden, .txt skipped; subfolder walked): %d/%d/%d", vkr_dataset_class_size(ds, 0),
          vkr_dataset_class_size(ds, 1), vkr_dataset_class_size(ds, 2));
    static const char *order[] = {"UPPER.PNG", "bmp.bmp", "gray.png", "graya.png", "jpg.jpg",
                                  "rgba.png",  "sixteen.png", "tga.tga", "sub/nested.png"};
    int ok = 1;
    for (int i = 0; i < 9; i++) {
        char want[600];
        snprintf(want, sizeof want, "%s/a_formats/%s", dir, order[i]);
        if (!vkr_dataset_path(ds, i) || strcmp(vkr_dataset_path(ds, i), want) || vkr_dataset_label(ds, i) != 0) {
            ok = 0;
            printf("  #%d: %s (want %s)\n", i, vkr_dataset_path(ds, i), want);
        }
    }
    CHECK(ok, "file order: strcmp within a folder, subfolders after (Keras os.walk order)");
    int nw = vkr_dataset_num_warnings(ds);
    int named = nw == 4;
    const char *bad[] = {"corrupt.jpg", "text.jpg", "trunc.png", "zero.png"};
    for (int i = 0; named && i < 4; i++) named = contains(vkr_dataset_warning(ds, i), bad[i]);
    CHECK(named, "4 skip warnings naming corrupt.jpg, text.jpg, trunc.png, zero.png (got %d)", nw);
    for (int i = 0; i < nw; i++) printf("  warning: %s\n", vkr_dataset_warning(ds, i));
    vkr_dataset_free(ds);

    /* strict: the first bad file is an error */
    o.strict = 1;
    s = vkr_dataset_open(dir, &o, &ds);
    CHECK(s == VKR_ERR_FORMAT && contains(vkr_last_error(), "b_bad/corrupt.jpg") &&
              contains(vkr_last_error(), "3 more"),
          "strict: VKR_ERR_FORMAT naming the first bad file: %s", vkr_last_error());
    o.strict = 0;

    /* header-only validation keeps the truncated PNG (its header is fine) */
    o.validate = VKR_VALIDATE_HEADER;
    s = vkr_dataset_open(dir, &o, &ds);
    CHECK(s == VKR_OK && vkr_dataset_class_size(ds, 1) == 3,
          "header validation: zero-byte and text files dropped, class b keeps 3 (2 good + 1 truncated PNG): %d", s ? -1 : vkr_dataset_class_size(ds, 1));
    if (!s) vkr_dataset_free(ds);

    /* no validation: the loader drops the bad files deterministically, or fails in strict mode */
    o.validate = VKR_VALIDATE_NONE;
    s = vkr_dataset_open(dir, &o, &ds);
    CHECK(s == VKR_OK && vkr_dataset_size(ds) == 16, "no validation: all 16 image-named files listed");
    if (s) return;
    vkr_loader_opts lo = {.batch = 4, .height = 5, .width = 5, .epochs = 1, .threads = 3, .quiet = 1,
                          .flags = VKR_LOAD_KEEP_REMAINDER};
    vkr_loader *ld;
    int total = 0, n, calls = 0;
    float *img = malloc(sizeof(float) * 4 * 75), *tg = malloc(sizeof(float) * 4 * 3);
    s = vkr_loader_create_ex(ds, &lo, &ld);
    CHECK_OK(s, "loader over the folder with bad files");
    if (s == VKR_OK) {
        while (vkr_loader_next(ld, img, tg, &n) == VKR_OK && n > 0) {
            total += n;
            calls++;
        }
        CHECK(total == 12 && vkr_loader_num_dropped(ld) == 4, "loader drops the 4 bad files: %d images, %d dropped",
              total, vkr_loader_num_dropped(ld));
        vkr_loader_destroy(ld);
    }
    lo.strict = 1;
    s = vkr_loader_create_ex(ds, &lo, &ld);
    CHECK_OK(s, "loader over the folder with bad files");
    if (s == VKR_OK) {
        s = VKR_OK;
        n = 1;
        while (s == VKR_OK && n > 0) s = vkr_loader_next(ld, img, tg, &n);
        CHECK(s == VKR_ERR_FORMAT && contains(vkr_last_error(), "b_bad/"), "strict loader: %s", vkr_last_error());
        vkr_loader_destroy(ld);
    }
    free(img);
    free(tg);
    vkr_dataset_free(ds);
}

static void test_dataset_errors(void) {
    char p[512];
    vkr_dataset *ds = NULL;
    vkr_dataset_opts o = {.quiet = 1};
    path_of(p, sizeof p, "nope");
    vkr_status s = vkr_dataset_open(p, &o, &ds);
    CHECK(s == VKR_ERR_IO && contains(vkr_last_error(), p) && contains(vkr_last_error(), "does not exist"),
          "missing folder: %s", vkr_last_error());
    path_of(p, sizeof p, "mixed/c_third/x.png");
    s = vkr_dataset_open(p, &o, &ds);
    CHECK(s == VKR_ERR_INVALID && contains(vkr_last_error(), "not a folder"), "file instead of folder: %s",
          vkr_last_error());
    mkdirs("flat");
    unsigned char *px = pattern(4, 4, 3, 9);
    write_png("flat/a.png", 4, 4, 3, px);
    path_of(p, sizeof p, "flat");
    s = vkr_dataset_open(p, &o, &ds);
    CHECK(s == VKR_ERR_INVALID && contains(vkr_last_error(), "no class subfolders"), "no class subfolders: %s",
          vkr_last_error());
    mkdirs("emptycls/one");
    mkdirs("emptycls/two");
    path_of(p, sizeof p, "emptycls");
    s = vkr_dataset_open(p, &o, &ds);
    CHECK(s == VKR_ERR_INVALID && contains(vkr_last_error(), "no images at all"), "no images at all: %s",
          vkr_last_error());
    write_png("emptycls/one/a.png", 4, 4, 3, px);
    s = vkr_dataset_open(p, &o, &ds);
    CHECK(s == VKR_ERR_INVALID && contains(vkr_last_error(), "two") && contains(vkr_last_error(), "no images"),
          "empty class named: %s", vkr_last_error());
    /* a folder holding an already split dataset (train/ + val/) is not two classes */
    mkdirs("presplit/train/cats");
    mkdirs("presplit/val/cats");
    write_png("presplit/train/cats/a.png", 4, 4, 3, px);
    write_png("presplit/val/cats/b.png", 4, 4, 3, px);
    path_of(p, sizeof p, "presplit");
    s = vkr_dataset_open(p, &o, &ds);
    CHECK(s == VKR_ERR_INVALID && contains(vkr_last_error(), "already split") && contains(vkr_last_error(), "presplit/train'") &&
              contains(vkr_last_error(), "presplit/val'"),
          "train + val folders: %s", vkr_last_error());
    vkr_dataset_opts ok_split = o;
    ok_split.split_names_ok = 1;
    s = vkr_dataset_open(p, &ok_split, &ds);
    CHECK(s == VKR_OK && vkr_dataset_num_classes(ds) == 2, "split_names_ok: train and val as classes");
    vkr_dataset_free(ds);
    ds = NULL;
    mkdirs("presplit/dogs");
    write_png("presplit/dogs/c.png", 4, 4, 3, px);
    s = vkr_dataset_open(p, &o, &ds);
    CHECK(s == VKR_OK && vkr_dataset_num_classes(ds) == 3, "train + val + dogs: ordinary class names");
    vkr_dataset_free(ds);
    ds = NULL;
    mkdirs("single/only");
    write_png("single/only/a.png", 4, 4, 3, px);
    path_of(p, sizeof p, "single");
    s = vkr_dataset_open(p, &o, &ds);
    CHECK(s == VKR_ERR_INVALID && contains(vkr_last_error(), "at least 2 classes"), "single class: %s",
          vkr_last_error());
    o.allow_single_class = 1;
    s = vkr_dataset_open(p, &o, &ds);
    CHECK(s == VKR_OK && vkr_dataset_num_classes(ds) == 1, "single class allowed for predict/evaluate");
    if (!s) vkr_dataset_free(ds);
    o.allow_single_class = 0;
    mkdirs("allbad/good");
    mkdirs("allbad/bad");
    write_png("allbad/good/a.png", 4, 4, 3, px);
    write_bytes("allbad/bad/x.jpg", "nope", 4);
    path_of(p, sizeof p, "allbad");
    s = vkr_dataset_open(p, &o, &ds);
    CHECK(s == VKR_ERR_INVALID && contains(vkr_last_error(), "bad") && contains(vkr_last_error(), "decodable"),
          "class with only bad files: %s", vkr_last_error());
    free(px);

    /* class list comparison */
    vkr_dataset *a = NULL, *b = NULL;
    path_of(p, sizeof p, "small");
    vkr_dataset_open(p, &o, &a);
    path_of(p, sizeof p, "mixed");
    vkr_dataset_open(p, &o, &b);
    CHECK(a && b && vkr_dataset_check_classes(a, a) == VKR_OK && vkr_dataset_check_classes(a, b) == VKR_ERR_INVALID,
          "check_classes: %s", vkr_last_error());
    vkr_dataset_free(a);
    vkr_dataset_free(b);
}

static int same_dataset(const vkr_dataset *a, const vkr_dataset *b) {
    if (vkr_dataset_size(a) != vkr_dataset_size(b)) return 0;
    for (int i = 0; i < vkr_dataset_size(a); i++)
        if (strcmp(vkr_dataset_path(a, i), vkr_dataset_path(b, i)) || vkr_dataset_label(a, i) != vkr_dataset_label(b, i))
            return 0;
    return 1;
}

static void test_split(const vkr_dataset *ds) {
    vkr_dataset *tr, *va, *tr2, *va2, *tr3, *va3;
    vkr_dataset_split(ds, 0.3, 42, &tr, &va);
    vkr_dataset_split(ds, 0.3, 42, &tr2, &va2);
    vkr_dataset_split(ds, 0.3, 43, &tr3, &va3);
    if (!tr || !va || !tr2 || !va2 || !tr3 || !va3) {
        CHECK(0, "split failed: %s", vkr_last_error());
        return;
    }
    CHECK(same_dataset(tr, tr2) && same_dataset(va, va2), "split is deterministic for a seed");
    CHECK(vkr_dataset_class_size(va, 0) == 3 && vkr_dataset_class_size(va, 1) == 2 && vkr_dataset_class_size(va, 2) == 2 &&
              vkr_dataset_class_size(tr, 0) == 7 && vkr_dataset_class_size(tr, 1) == 5 &&
              vkr_dataset_class_size(tr, 2) == 3,
          "stratified: val 3/2/2 of 10/7/5");
    int disjoint = 1;
    for (int i = 0; i < vkr_dataset_size(va); i++)
        for (int j = 0; j < vkr_dataset_size(tr); j++)
            if (!strcmp(vkr_dataset_path(va, i), vkr_dataset_path(tr, j))) disjoint = 0;
    int sorted = 1;
    for (int i = 1; i < vkr_dataset_size(tr); i++)
        if (strcmp(vkr_dataset_path(tr, i - 1), vkr_dataset_path(tr, i)) > 0) sorted = 0;
    CHECK(disjoint && sorted && vkr_dataset_size(tr) + vkr_dataset_size(va) == vkr_dataset_size(ds) &&
              vkr_dataset_num_classes(va) == 3,
          "split is a partition, keeps dataset order and all classes");
    CHECK(!same_dataset(va, va3), "another seed picks other files");
    vkr_dataset *t0, *v0;
    vkr_dataset_split(ds, 0.0, 1, &t0, &v0);
    CHECK(t0 && v0 && vkr_dataset_size(v0) == 0 && same_dataset(t0, ds), "fraction 0: everything in train");
    vkr_dataset_free(t0);
    vkr_dataset_free(v0);
    CHECK(vkr_dataset_split(ds, 1.0, 1, &t0, &v0) == VKR_ERR_INVALID, "fraction 1 rejected");
    vkr_dataset_free(tr);
    vkr_dataset_free(va);
    vkr_dataset_free(tr2);
    vkr_dataset_free(va2);
    vkr_dataset_free(tr3);
    vkr_dataset_free(va3);
}

typedef struct {
    int nb;
    int n[64];
    int idx[64][16];
    float *img; /* [nb][batch][chw] */
    float *tg;
} run_result;

static int run_loader(const vkr_dataset *ds, const vkr_loader_opts *o, run_result *r, int max_batches) {
    memset(r, 0, sizeof *r);
    size_t chw = (size_t)(o->channels ? o->channels : 3) * o->height * o->width;
    int K = vkr_dataset_num_classes(ds);
    r->img = calloc((size_t)max_batches * o->batch * chw, sizeof(float));
    r->tg = calloc((size_t)max_batches * o->batch * K, sizeof(float));
    vkr_loader *ld;
    if (vkr_loader_create_ex(ds, o, &ld)) {
        printf("  loader: %s\n", vkr_last_error());
        return -1;
    }
    int n;
    while (r->nb < max_batches &&
           vkr_loader_next(ld, r->img + (size_t)r->nb * o->batch * chw, r->tg + (size_t)r->nb * o->batch * K, &n) ==
               VKR_OK &&
           n > 0) {
        r->n[r->nb] = n;
        memcpy(r->idx[r->nb], vkr_loader_batch_indices(ld), sizeof(int) * (size_t)n);
        r->nb++;
    }
    vkr_loader_destroy(ld);
    return 0;
}

static void free_run(run_result *r) {
    free(r->img);
    free(r->tg);
}

static int same_run(const run_result *a, const run_result *b, size_t floats) {
    if (a->nb != b->nb) return 0;
    for (int i = 0; i < a->nb; i++)
        if (a->n[i] != b->n[i] || memcmp(a->idx[i], b->idx[i], sizeof(int) * (size_t)a->n[i])) return 0;
    return memcmp(a->img, b->img, floats * sizeof(float)) == 0;
}

/* order, threads, determinism, resuming, targets and pixels */
static void test_loader(const vkr_dataset *ds) {
    const int B = 5, H = 6, W = 8, N = vkr_dataset_size(ds), K = 3;
    const size_t chw = 3 * H * W;
    vkr_loader_opts o = {.batch = B, .height = H, .width = W, .preprocess = VKR_PREPROC_CAFFE, .epoch = 3,
                         .epochs = 1, .seed = 7, .flags = VKR_LOAD_SHUFFLE | VKR_LOAD_KEEP_REMAINDER, .threads = 1};
    run_result r1, r4, r4b, rp;
    run_loader(ds, &o, &r1, 64);
    o.threads = 4;
    run_loader(ds, &o, &r4, 64);
    o.threads = 7;
    o.prefetch = 5;
    run_loader(ds, &o, &r4b, 64);
    size_t floats = (size_t)64 * B * chw;
    CHECK(r1.nb == 5 && r1.n[4] == 2, "22 images, batch 5, keep remainder: 5 batches, last has 2 (%d, %d)", r1.nb,
          r1.n[r1.nb ? r1.nb - 1 : 0]);
    CHECK(same_run(&r1, &r4, floats) && same_run(&r1, &r4b, floats),
          "identical batches with 1, 4 and 7 threads, prefetch 2 and 5");
    /* permutation + one-hot targets + equality with single-image decode */
    int seen[64] = {0}, perm_ok = 1, tg_ok = 1, img_ok = 1, shuffled = 0;
    float *ref = malloc(sizeof(float) * chw);
    for (int b = 0; b < r1.nb; b++)
        for (int k = 0; k < r1.n[b]; k++) {
            int i = r1.idx[b][k];
            if (i < 0 || i >= N || seen[i]++) perm_ok = 0;
            if (i != b * B + k) shuffled = 1;
            const float *t = r1.tg + ((size_t)b * B + k) * K;
            for (int c = 0; c < K; c++)
                if (t[c] != (c == vkr_dataset_label(ds, i) ? 1.0f : 0.0f)) tg_ok = 0;
            vkr_image_load(vkr_dataset_path(ds, i), H, W, VKR_INTERP_BILINEAR, VKR_PREPROC_CAFFE, ref);
            if (memcmp(ref, r1.img + ((size_t)b * B + k) * chw, sizeof(float) * chw)) img_ok = 0;
        }
    CHECK(perm_ok && shuffled, "an epoch is a shuffled permutation of all images");
    CHECK(tg_ok, "targets are one-hot labels");
    CHECK(img_ok, "loader images equal single-threaded vkr_image_load");

    /* the same (seed, epoch) in a multi-epoch loader: resumable */
    o.epoch = 2;
    o.epochs = 3;
    o.threads = 3;
    o.prefetch = 0;
    run_result m;
    run_loader(ds, &o, &m, 64);
    int resumed = m.nb == 15;
    for (int b = 0; resumed && b < 5; b++)
        if (m.n[5 + b] != r1.n[b] || memcmp(m.idx[5 + b], r1.idx[b], sizeof(int) * (size_t)r1.n[b]) ||
            memcmp(m.img + (size_t)(5 + b) * B * chw, r1.img + (size_t)b * B * chw, sizeof(float) * chw * r1.n[b]))
            resumed = 0;
    CHECK(resumed, "epoch 3 of a loader started at epoch 2 equals a loader started at epoch 3 (%d batches)", m.nb);
    int differs = memcmp(m.idx[0], m.idx[5], sizeof(int) * B) != 0;
    CHECK(differs, "epochs 2 and 3 have different orders");
    free_run(&m);

    /* steps without remainder, no shuffle = dataset order */
    o.epoch = 0;
    o.epochs = 1;
    o.flags = 0;
    run_loader(ds, &o, &rp, 64);
    int inorder = rp.nb == 4;
    for (int b = 0; inorder && b < 4; b++)
        for (int k = 0; k < B; k++)
            if (rp.idx[b][k] != b * B + k) inorder = 0;
    CHECK(inorder, "no shuffle, remainder dropped: 4 batches in dataset order");
    free_run(&rp);

    free(ref);
    free_run(&r1);
    free_run(&r4);
    free_run(&r4b);
}

/* augmentation: flips and shifts, deterministic */
static void test_loader_augment(const vkr_dataset *ds) {
    const int B = 5, H = 6, W = 8;
    const size_t chw = 3 * H * W;
    size_t floats = (size_t)64 * B * chw;
    vkr_loader_opts o = {.batch = B, .height = H, .width = W, .preprocess = VKR_PREPROC_CAFFE, .epochs = 4,
                         .seed = 7, .threads = 2};
    float *ref = malloc(sizeof(float) * chw);
    o.flags = VKR_LOAD_FLIP | VKR_LOAD_SHUFFLE;
    o.epochs = 4;
    o.threads = 2;
    run_result fa, fb;
    run_loader(ds, &o, &fa, 64);
    o.threads = 5;
    run_loader(ds, &o, &fb, 64);
    CHECK(same_run(&fa, &fb, floats), "flip augmentation is deterministic across thread counts");
    int flips = 0, plain = 0, other = 0;
    for (int b = 0; b < fa.nb; b++)
        for (int k = 0; k < fa.n[b]; k++) {
            vkr_image_load(vkr_dataset_path(ds, fa.idx[b][k]), H, W, VKR_INTERP_BILINEAR, VKR_PREPROC_CAFFE, ref);
            const float *a = fa.img + ((size_t)b * B + k) * chw;
            int same = !memcmp(a, ref, sizeof(float) * chw), mirror = 1;
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < H; y++)
                    for (int x = 0; x < W; x++)
                        if (a[(c * H + y) * W + x] != ref[(c * H + y) * W + (W - 1 - x)]) mirror = 0;
            if (same)
                plain++;
            else if (mirror)
                flips++;
            else
                other++;
        }
    CHECK(other == 0 && flips >= 20 && plain >= 20, "flip: %d mirrored, %d unchanged, %d other (of %d)", flips, plain,
          other, flips + plain + other);
    free_run(&fa);
    free_run(&fb);

    o.flags = VKR_LOAD_CROP;
    o.epochs = 2;
    run_result cr;
    run_loader(ds, &o, &cr, 64);
    int ph = (H + 4) / 8, pw = (W + 4) / 8, shifted = 0, bad = 0, moved = 0;
    for (int b = 0; b < cr.nb; b++)
        for (int k = 0; k < cr.n[b]; k++) {
            vkr_image_load(vkr_dataset_path(ds, cr.idx[b][k]), H, W, VKR_INTERP_BILINEAR, VKR_PREPROC_CAFFE, ref);
            const float *a = cr.img + ((size_t)b * B + k) * chw;
            int found = 0;
            for (int dy = -ph; !found && dy <= ph; dy++)
                for (int dx = -pw; !found && dx <= pw; dx++) {
                    int ok = 1;
                    for (int c = 0; ok && c < 3; c++)
                        for (int y = 0; ok && y < H; y++)
                            for (int x = 0; ok && x < W; x++) {
                                int sy = y + dy, sx = x + dx;
                                float want = sy < 0 || sy >= H || sx < 0 || sx >= W ? 0.0f : ref[(c * H + sy) * W + sx];
                                if (a[(c * H + y) * W + x] != want) ok = 0;
                            }
                    if (ok) {
                        found = 1;
                        if (dy || dx) moved++;
                    }
                }
            if (found)
                shifted++;
            else
                bad++;
        }
    CHECK(bad == 0 && moved > shifted / 2, "crop = shift by up to (%d,%d) with zero padding: %d ok (%d moved), %d bad",
          ph, pw, shifted, moved, bad);
    free_run(&cr);

    free(ref);
}

/* one channel; errors; destroying a loader with batches in flight */
static void test_loader_misc(const vkr_dataset *ds) {
    const int B = 5, H = 6, W = 8;
    const size_t chw = 3 * H * W;
    vkr_loader_opts o = {.batch = B, .height = H, .width = W, .preprocess = VKR_PREPROC_CAFFE, .epochs = 2,
                         .seed = 7, .threads = 2};
    float *ref = malloc(sizeof(float) * chw);
    o.flags = 0;
    o.channels = 1;
    o.preprocess = VKR_PREPROC_UNIT;
    run_result g1;
    run_loader(ds, &o, &g1, 64);
    vkr_image_load_ex(vkr_dataset_path(ds, g1.idx[0][1]), H, W, 1, VKR_INTERP_BILINEAR, VKR_PREPROC_UNIT, ref);
    CHECK(g1.nb == 8 && !memcmp(g1.img + (size_t)H * W, ref, sizeof(float) * H * W), "channels=1 loader");
    free_run(&g1);

    /* errors, early destroy */
    o.channels = 3;
    o.batch = 30;
    vkr_loader *ld = NULL;
    CHECK(vkr_loader_create_ex(ds, &o, &ld) == VKR_ERR_INVALID && contains(vkr_last_error(), "fewer than one batch"),
          "batch larger than the dataset: %s", vkr_last_error());
    o.batch = 0;
    CHECK(vkr_loader_create_ex(ds, &o, &ld) == VKR_ERR_INVALID, "batch 0 rejected");
    CHECK(vkr_loader_create(ds, 4, H, W, VKR_PREPROC_TORCH, 0, 1, VKR_LOAD_SHUFFLE, &ld) == VKR_OK,
          "positional create");
    if (ld) {
        float *img = malloc(sizeof(float) * 4 * chw);
        int n, ep, st;
        vkr_loader_next(ld, img, NULL, &n);
        vkr_loader_position(ld, &ep, &st);
        CHECK(n == 4 && ep == 0 && st == 1 && vkr_loader_steps_per_epoch(ld) == 5, "position after one batch");
        vkr_loader_destroy(ld); /* with prefetch in flight */
        free(img);
    }
    free(ref);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void test_cats_dogs(void) {
    const char *cands[4] = {getenv("VKRUN_SHARED_DIR"), NULL, "../shared", "../../shared"};
#ifdef VKR_SOURCE_DIR
    cands[1] = VKR_SOURCE_DIR "/../shared";
#endif
    char base[512] = "";
    for (int i = 0; i < 4; i++) {
        if (!cands[i]) continue;
        char p[600];
        snprintf(p, sizeof p, "%s/data/cats_dogs/train", cands[i]);
        struct stat st;
        if (stat(p, &st) == 0) {
            snprintf(base, sizeof base, "%s/data/cats_dogs", cands[i]);
            break;
        }
    }
    if (!base[0]) {
        SKIP_CHECK("cats_dogs: ../shared/data/cats_dogs not found");
        return;
    }
    char p[600];
    vkr_dataset *tr = NULL, *va = NULL;
    snprintf(p, sizeof p, "%s/train", base);
    double t0 = now_s();
    vkr_status s = vkr_dataset_open(p, NULL, &tr);
    double t1 = now_s();
    snprintf(p, sizeof p, "%s/val", base);
    if (!s) s = vkr_dataset_open(p, NULL, &va);
    CHECK(s == VKR_OK && vkr_dataset_size(tr) == 200 && vkr_dataset_size(va) == 50 &&
              vkr_dataset_num_warnings(tr) == 0 && vkr_dataset_num_warnings(va) == 0 &&
              vkr_dataset_check_classes(tr, va) == VKR_OK && !strcmp(vkr_dataset_class_name(tr, 0), "cats"),
          "cats_dogs: 200 train + 50 val, all decode, classes cats/dogs");
    if (s) {
        vkr_dataset_free(tr);
        return;
    }
    printf("  open+validate of 200 JPEGs: %.2f s (%.0f images/s, %d threads)\n", t1 - t0, 200 / (t1 - t0),
           vkr_cpu_count());
    for (int threads = 1; threads <= vkr_cpu_count(); threads *= 2) {
        vkr_loader_opts o = {.batch = 32, .height = 224, .width = 224, .preprocess = VKR_PREPROC_CAFFE, .epochs = 1,
                             .seed = 1, .flags = VKR_LOAD_SHUFFLE | VKR_LOAD_KEEP_REMAINDER | VKR_LOAD_FLIP,
                             .threads = threads};
        float *img = malloc(sizeof(float) * 32 * 3 * 224 * 224);
        vkr_loader *ld;
        int total = 0, n;
        double a = now_s();
        for (int d = 0; d < 2; d++) {
            vkr_dataset *ds = d ? va : tr;
            if (vkr_loader_create_ex(ds, &o, &ld)) break;
            while (vkr_loader_next(ld, img, NULL, &n) == VKR_OK && n > 0) total += n;
            vkr_loader_destroy(ld);
        }
        double b = now_s();
        printf("  loader 224x224 caffe, %d thread(s): %d images in %.2f s = %.0f images/s\n", threads, total, b - a,
               total / (b - a));
        CHECK(total == 250, "cats_dogs loader delivered all 250 images (%d threads)", threads);
        free(img);
    }
    vkr_dataset_free(tr);
    vkr_dataset_free(va);
}

int main(void) {
    if (fixture_setup("data")) return 1;
    test_odd_entries();
    test_dataset_mixed();
    test_dataset_errors();
    char p[512];
    path_of(p, sizeof p, "small");
    vkr_dataset *ds = NULL;
    vkr_dataset_opts o = {.threads = 3};
    if (vkr_dataset_open(p, &o, &ds) == VKR_OK) {
        test_split(ds);
        test_loader(ds);
        test_loader_augment(ds);
        test_loader_misc(ds);
        vkr_dataset_free(ds);
    } else {
        CHECK(0, "open small dataset: %s", vkr_last_error());
    }
    test_cats_dogs();
    remove_tree(g_root);
    return test_finish();
}
