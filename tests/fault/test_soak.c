/* Soak: VKRUN_SOAK_STEPS training steps (default 1000; more for a longer run) of a
 * small model, with an inference forward every 10 steps and the optimizer state saved every 100.
 * Every 100 steps the device memory (the context's own counters: bytes allocated from the
 * device, bytes of live buffers), the resident set (/proc/self/statm) and the bytes malloc holds
 * (mallinfo2; ASan's count in the sanitizer build) are printed.  After the warm-up (step 100)
 * the device figures must not move at all, the resident set must grow by less than 4 MiB (not
 * checked under ASan, whose quarantine grows it) and malloc'd bytes by less than 256 KiB in
 * total; the loss must fall (the steps train).
 *
 * test_soak --make-data DIR N: writes N small PNGs in each of DIR/a and DIR/b (the data of
 * tests/fault/two_trains.sh). */
#define _GNU_SOURCE
#include "test_util.h"
#include "vkrun_model.h"

#include <malloc.h>
#ifdef __SANITIZE_ADDRESS__ /* gcc -fsanitize=address: malloc is ASan's (gcc ships no header for this) */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stb_image_write.h" /* declarations; implementation in libstb.so */

enum { C = 3, H = 12, W = 12, K = 4, B = 8 };

static int make_data(const char *dir, int n) {
    char p[4096];
    unsigned char px[16 * 16 * 3];
    uint32_t r = 7;
    mkdir(dir, 0777);
    for (int c = 0; c < 2; c++) {
        snprintf(p, sizeof p, "%s/%c", dir, 'a' + c);
        mkdir(p, 0777);
        for (int i = 0; i < n; i++) {
            for (size_t k = 0; k < sizeof px; k++) /* class a dark, b bright, both noisy */
                px[k] = (unsigned char)((c ? 128 : 0) + ((r = r * 1664525u + 1013904223u) >> 25));
            snprintf(p, sizeof p, "%s/%c/%03d.png", dir, 'a' + c, i);
            if (!stbi_write_png(p, 16, 16, 3, px, 16 * 3)) return 1;
        }
    }
    return 0;
}

/* Bytes malloc holds for the program: ASan's live allocations in the sanitizer build (mallinfo2
 * knows nothing of them), else glibc's. */
static double heap_mib(void) {
#ifdef __SANITIZE_ADDRESS__
    return __sanitizer_get_current_allocated_bytes() / 1048576.0;
#else
    return mallinfo2().uordblks / 1048576.0;
#endif
}

/* Bound on the resident set's growth after step 100: ASan keeps freed memory in quarantine
 * (256 MiB by default) before reusing it, so there the resident set grows by design and only
 * the live bytes above are checked. */
#ifdef __SANITIZE_ADDRESS__
#define RSS_BOUND_MIB 1e9
#define RSS_RULE "RSS not bounded under ASan"
#else
#define RSS_BOUND_MIB 4.0
#define RSS_RULE "RSS within 4 MiB"
#endif

static double rss_mib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2) res = 0;
        fclose(f);
    }
    return res * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 4 && !strcmp(argv[1], "--make-data")) return make_data(argv[2], atoi(argv[3]));
    const char *e = getenv("VKRUN_SOAK_STEPS");
    int steps = e && *e ? atoi(e) : 1000;
    if (steps < 200) steps = 200;
    vkr_context *ctx = test_context(NULL, 0);
    if (!ctx) return test_finish();
    vkr_model *m = NULL;
    vkr_status s = vkr_model_new("soak", "in", C, H, W, "none", &m);
    const char *layers[] = {
        "{\"name\":\"c1\",\"type\":\"conv2d\",\"filters\":8,\"kernel\":3,\"padding\":\"same\"}",
        "{\"name\":\"bn1\",\"type\":\"batchnorm\"}",
        "{\"name\":\"r1\",\"type\":\"relu\"}",
        "{\"name\":\"c2\",\"type\":\"conv2d\",\"filters\":8,\"kernel\":3,\"padding\":\"same\"}",
        "{\"name\":\"add\",\"type\":\"add\",\"inputs\":[\"r1\",\"c2\"]}",
        "{\"name\":\"p\",\"type\":\"maxpool\",\"pool\":2}",
        "{\"name\":\"gap\",\"type\":\"gap\"}",
        "{\"name\":\"fc\",\"type\":\"dense\",\"units\":4,\"activation\":\"softmax\"}",
    };
    for (size_t i = 0; i < sizeof layers / sizeof layers[0] && !s; i++) s = vkr_model_append_json(m, layers[i], 11 + i);
    vkr_graph *g = NULL;
    vkr_graph_opts o = {.batch = B, .training = 1, .bn_train = 1, .loss = VKR_LOSS_SOFTMAX_CE, .optimizer = VKR_OPTIM_ADAM,
                        .optim = {.lr = 3e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-7f}};
    if (!s) s = vkr_graph_create(ctx, m, &o, &g);
    CHECK_OK(s, "model and training graph");
    static float x[4][B * C * H * W], t[4][B * K], probs[B * K];
    uint32_t r = 99;
    for (int b = 0; b < 4; b++) /* four fixed batches; the class is in the mean of a channel */
        for (int i = 0; i < B; i++) {
            int cls = (b + i) % K;
            t[b][i * K + cls] = 1;
            for (int k = 0; k < C * H * W; k++)
                x[b][i * C * H * W + k] = (float)((r = r * 1664525u + 1013904223u) >> 8) / (1 << 24) +
                                          (k / (H * W) == cls % C ? 0.5f * (1 + cls / C) : 0);
        }
    char opt[4096];
    const char *tmp = getenv("TMPDIR");
    snprintf(opt, sizeof opt, "%s/vkrun-soak-%d.optimizer", tmp && *tmp ? tmp : "/tmp", (int)getpid());
    double dev0 = 0, live0 = 0, rss0 = 0, heap0 = 0, first_loss = NAN, loss_sum = 0;
    int n_loss = 0, flat = 0;
    char growth[512] = "";
    printf("  step   device MiB  live MiB   RSS MiB  malloc'd MiB  mean loss\n");
    for (int st = 0; st <= steps && !s; st++) {
        if (st % 100 == 0) {
            double dev = vkr_device_bytes_allocated(ctx) / 1048576.0, live = vkr_device_bytes_in_use(ctx) / 1048576.0;
            double rss = rss_mib(), heap = heap_mib();
            printf("  %4d  %10.3f  %8.3f  %8.2f  %12.3f  %9.4f\n", st, dev, live, rss, heap,
                   n_loss ? loss_sum / n_loss : NAN);
            if (st == 100) dev0 = dev, live0 = live, rss0 = rss, heap0 = heap;
            if (st > 100) {
                flat = !(dev != dev0 || live != live0 || rss - rss0 > RSS_BOUND_MIB || heap - heap0 > 0.25);
                snprintf(growth, sizeof growth, "device %.3f -> %.3f MiB, live %.3f -> %.3f MiB, RSS %.2f -> %.2f MiB, "
                         "malloc'd %.3f -> %.3f MiB at step %d", dev0, dev, live0, live, rss0, rss, heap0, heap, st);
                if (!flat) break;
            }
            loss_sum = 0, n_loss = 0;
            if (st == steps) break;
        }
        float loss;
        int correct;
        s = vkr_graph_train_step(g, x[st % 4], t[st % 4], B, &loss, &correct);
        if (!s && st % 10 == 0) s = vkr_graph_forward(g, x[(st + 1) % 4], B, NULL, probs);
        if (!s && st % 100 == 50) s = vkr_graph_save_optimizer(g, opt);
        if (st == 0) first_loss = loss;
        loss_sum += loss, n_loss++;
        if (!s && !isfinite(loss)) s = vkr_fail(VKR_ERR_INVALID, "loss %g at step %d", loss, st);
    }
    CHECK_OK(s, "%d training steps (+ a forward every 10, the optimizer saved every 100)", steps);
    CHECK(flat && growth[0], "memory flat from step 100 (device and live bytes unchanged, " RSS_RULE
                             ", malloc'd within 256 KiB): %s", growth);
    float last = NAN;
    int correct = 0;
    if (!s) s = vkr_graph_eval_batch(g, x[0], t[0], B, &last, &correct);
    CHECK(!s && last < 0.5f * first_loss, "the steps train: loss %.4f at step 0, %.4f after (%d of %d right)", first_loss,
          last, correct, B);
    unlink(opt);
    vkr_graph_destroy(g);
    vkr_model_free(m);
    test_no_validation_messages(ctx, "soak");
    vkr_context_destroy(ctx);
    return test_finish();
}
