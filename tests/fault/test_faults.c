/* Injected faults: every host allocation (malloc, calloc, realloc, strdup, and cJSON's through
 * cJSON_InitHooks), every file open of the library (fopen, fdopen, mkstemp) and every Vulkan call
 * of the library that returns a VkResult is made to fail, one at a time, in a representative
 * scenario: create a context, load a small model, build a training graph, one training step,
 * save the model, the optimizer state and a .npy, decode and predict an image.
 *
 * The test binary is linked with -Wl,--wrap=SYM for each of them (tests/fault/CMakeLists.txt):
 * only the references of libvkrun.a and of this file go through the __wrap_ functions below,
 * not those of the Vulkan loader, the driver, libc or the validation layer.
 *
 * A first child process runs the scenario and records the sequence of injection points (call
 * k, its kind and its call site, __builtin_return_address).  Then, for each chosen k, a fresh
 * child runs the scenario with the k-th call failing (ENOMEM / NULL / VK_ERROR_OUT_OF_*_MEMORY)
 * and must: return a vkr_status with a message, or succeed with the same prediction (a failure
 * the library recovers from, e.g. re-planning after out-of-device-memory); not crash or hang;
 * leave no file half-written (each output absent or whole, no temporary left); report no
 * validation message; and, in the ASan build, exit without a leak (LeakSanitizer runs at each
 * child's exit).  The ks: the first call of every distinct (kind, call site) pair, plus every
 * VKRUN_FAULT_STRIDE-th call (default 1: all of them; 0: call sites only). */
#define _GNU_SOURCE
#include "test_util.h"
#include "vkrun_data.h"
#include "vkrun_model.h"
#include "vkrun_npy.h"

#include <cJSON.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <vulkan/vulkan.h>

#include "stb_image_write.h" /* declarations; implementation in libstb.so */

/* ------------------------------------------------------------------ the injector */

enum { K_MALLOC, K_CALLOC, K_REALLOC, K_STRDUP, K_CJSON, K_FILE, K_VULKAN, K_KINDS };
static const char *const k_kind_name[K_KINDS] = {"malloc", "calloc", "realloc", "strdup", "cJSON", "file", "vulkan"};

#define MAX_SITES 8192
#define MAX_CALLS (1 << 20)

typedef struct {
    /* written by the counting child */
    long ncalls;
    int nsites;
    int site_of_call[MAX_CALLS];
    struct {
        void *addr;
        int kind;
        const char *vk_name; /* static string of this binary: valid in the parent after fork */
        long first_call;
    } sites[MAX_SITES];
    float ref_probs[16];
    char ref_opt[16384]; /* the optimizer file of the counting run (header and one Adam step) */
    long ref_opt_size;
    int ref_nprobs;
    /* written by each fault child */
    int reached;     /* the failing call happened */
    int failed_site; /* its site in this run */
    int ok;          /* the scenario returned VKR_OK */
    char msg[600];   /* vkr_last_error() when it did not */
} shared_state;

static shared_state *g_sh;
static atomic_long g_calls;
static long g_fail_at;  /* 1-based call to fail; 0: none */
static int g_mode;      /* 0 off, 1 counting, 2 injecting */

static int site_id(void *addr, int kind, const char *vk_name) {
    for (int i = 0; i < g_sh->nsites; i++)
        if (g_sh->sites[i].addr == addr && g_sh->sites[i].kind == kind) return i;
    if (g_sh->nsites == MAX_SITES) return -1;
    int i = g_sh->nsites++;
    g_sh->sites[i].addr = addr;
    g_sh->sites[i].kind = kind;
    g_sh->sites[i].vk_name = vk_name;
    g_sh->sites[i].first_call = -1;
    return i;
}

/* Returns 1 when this call must fail. */
static int inject(void *addr, int kind, const char *vk_name) {
    if (!g_mode) return 0;
    long k = atomic_fetch_add(&g_calls, 1) + 1;
    if (g_mode == 1) {
        int s = site_id(addr, kind, vk_name);
        if (k <= MAX_CALLS) g_sh->site_of_call[k - 1] = s;
        if (s >= 0 && g_sh->sites[s].first_call < 0) g_sh->sites[s].first_call = k;
        g_sh->ncalls = k;
        return 0;
    }
    if (k != g_fail_at) return 0;
    g_sh->reached = 1;
    g_sh->failed_site = -1;
    for (int i = 0; i < g_sh->nsites; i++)
        if (g_sh->sites[i].addr == addr && g_sh->sites[i].kind == kind) g_sh->failed_site = i;
    return 1;
}

#define HERE __builtin_return_address(0)

void *__real_malloc(size_t n);
void *__real_calloc(size_t a, size_t b);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
FILE *__real_fopen(const char *path, const char *mode);
FILE *__real_fdopen(int fd, const char *mode);
int __real_mkstemp(char *tmpl);

void *__wrap_malloc(size_t n) {
    if (inject(HERE, K_MALLOC, NULL)) return errno = ENOMEM, NULL;
    return __real_malloc(n);
}
void *__wrap_calloc(size_t a, size_t b) {
    if (inject(HERE, K_CALLOC, NULL)) return errno = ENOMEM, NULL;
    return __real_calloc(a, b);
}
void *__wrap_realloc(void *p, size_t n) {
    if (inject(HERE, K_REALLOC, NULL)) return errno = ENOMEM, NULL;
    return __real_realloc(p, n);
}
char *__wrap_strdup(const char *s) {
    if (inject(HERE, K_STRDUP, NULL)) return errno = ENOMEM, NULL;
    return __real_strdup(s);
}
FILE *__wrap_fopen(const char *path, const char *mode) {
    if (inject(HERE, K_FILE, NULL)) return errno = EMFILE, NULL;
    return __real_fopen(path, mode);
}
FILE *__wrap_fdopen(int fd, const char *mode) {
    if (inject(HERE, K_FILE, NULL)) return errno = ENOMEM, NULL;
    return __real_fdopen(fd, mode);
}
int __wrap_mkstemp(char *tmpl) {
    if (inject(HERE, K_FILE, NULL)) return errno = ENOSPC, -1;
    return __real_mkstemp(tmpl);
}
/* cJSON allocates inside libcjson.so: its hooks make those allocations injection points too
 * (the call site is then inside cJSON; the first call of each is covered). */
static void *cjson_malloc(size_t n) {
    if (inject(HERE, K_CJSON, NULL)) return NULL;
    return __real_malloc(n);
}

/* Every Vulkan function of the library that returns a VkResult.  The list is checked against
 * the library's source at build time (tests/fault/CMakeLists.txt). */
#define VK_WRAP(name, err, params, args)              \
    VkResult __real_##name params;                    \
    VkResult __wrap_##name params {                   \
        if (inject(HERE, K_VULKAN, #name)) return err; \
        return __real_##name args;                    \
    }
#define HOST VK_ERROR_OUT_OF_HOST_MEMORY
#define DEV VK_ERROR_OUT_OF_DEVICE_MEMORY
#define AC const VkAllocationCallbacks *a
VK_WRAP(vkCreateInstance, HOST, (const VkInstanceCreateInfo *c, AC, VkInstance *o), (c, a, o))
VK_WRAP(vkEnumerateInstanceVersion, HOST, (uint32_t *v), (v))
VK_WRAP(vkEnumerateInstanceLayerProperties, HOST, (uint32_t *n, VkLayerProperties *p), (n, p))
VK_WRAP(vkEnumerateInstanceExtensionProperties, HOST, (const char *l, uint32_t *n, VkExtensionProperties *p), (l, n, p))
VK_WRAP(vkEnumeratePhysicalDevices, HOST, (VkInstance i, uint32_t *n, VkPhysicalDevice *p), (i, n, p))
VK_WRAP(vkEnumerateDeviceExtensionProperties, HOST,
        (VkPhysicalDevice d, const char *l, uint32_t *n, VkExtensionProperties *p), (d, l, n, p))
VK_WRAP(vkCreateDevice, HOST, (VkPhysicalDevice p, const VkDeviceCreateInfo *c, AC, VkDevice *o), (p, c, a, o))
VK_WRAP(vkCreateCommandPool, HOST, (VkDevice d, const VkCommandPoolCreateInfo *c, AC, VkCommandPool *o), (d, c, a, o))
VK_WRAP(vkAllocateCommandBuffers, HOST, (VkDevice d, const VkCommandBufferAllocateInfo *c, VkCommandBuffer *o), (d, c, o))
VK_WRAP(vkCreateFence, HOST, (VkDevice d, const VkFenceCreateInfo *c, AC, VkFence *o), (d, c, a, o))
VK_WRAP(vkResetFences, DEV, (VkDevice d, uint32_t n, const VkFence *f), (d, n, f))
VK_WRAP(vkWaitForFences, DEV, (VkDevice d, uint32_t n, const VkFence *f, VkBool32 all, uint64_t t), (d, n, f, all, t))
VK_WRAP(vkQueueSubmit, DEV, (VkQueue q, uint32_t n, const VkSubmitInfo *s, VkFence f), (q, n, s, f))
VK_WRAP(vkDeviceWaitIdle, DEV, (VkDevice d), (d))
VK_WRAP(vkBeginCommandBuffer, HOST, (VkCommandBuffer c, const VkCommandBufferBeginInfo *b), (c, b))
VK_WRAP(vkEndCommandBuffer, HOST, (VkCommandBuffer c), (c))
VK_WRAP(vkResetCommandBuffer, DEV, (VkCommandBuffer c, VkCommandBufferResetFlags f), (c, f))
VK_WRAP(vkCreateBuffer, HOST, (VkDevice d, const VkBufferCreateInfo *c, AC, VkBuffer *o), (d, c, a, o))
VK_WRAP(vkCreateBufferView, HOST, (VkDevice d, const VkBufferViewCreateInfo *c, AC, VkBufferView *o), (d, c, a, o))
VK_WRAP(vkAllocateMemory, DEV, (VkDevice d, const VkMemoryAllocateInfo *c, AC, VkDeviceMemory *o), (d, c, a, o))
VK_WRAP(vkBindBufferMemory, DEV, (VkDevice d, VkBuffer b, VkDeviceMemory m, VkDeviceSize o), (d, b, m, o))
VK_WRAP(vkMapMemory, HOST, (VkDevice d, VkDeviceMemory m, VkDeviceSize o, VkDeviceSize s, VkMemoryMapFlags f, void **p),
        (d, m, o, s, f, p))
VK_WRAP(vkCreateQueryPool, HOST, (VkDevice d, const VkQueryPoolCreateInfo *c, AC, VkQueryPool *o), (d, c, a, o))
VK_WRAP(vkGetQueryPoolResults, DEV,
        (VkDevice d, VkQueryPool q, uint32_t f, uint32_t n, size_t s, void *p, VkDeviceSize st, VkQueryResultFlags fl),
        (d, q, f, n, s, p, st, fl))
VK_WRAP(vkCreateShaderModule, HOST, (VkDevice d, const VkShaderModuleCreateInfo *c, AC, VkShaderModule *o), (d, c, a, o))
VK_WRAP(vkCreatePipelineCache, HOST, (VkDevice d, const VkPipelineCacheCreateInfo *c, AC, VkPipelineCache *o), (d, c, a, o))
VK_WRAP(vkGetPipelineCacheData, HOST, (VkDevice d, VkPipelineCache c, size_t *n, void *p), (d, c, n, p))
VK_WRAP(vkCreatePipelineLayout, HOST, (VkDevice d, const VkPipelineLayoutCreateInfo *c, AC, VkPipelineLayout *o),
        (d, c, a, o))
VK_WRAP(vkCreateDescriptorSetLayout, HOST,
        (VkDevice d, const VkDescriptorSetLayoutCreateInfo *c, AC, VkDescriptorSetLayout *o), (d, c, a, o))
VK_WRAP(vkCreateDescriptorPool, HOST, (VkDevice d, const VkDescriptorPoolCreateInfo *c, AC, VkDescriptorPool *o),
        (d, c, a, o))
VK_WRAP(vkAllocateDescriptorSets, HOST, (VkDevice d, const VkDescriptorSetAllocateInfo *c, VkDescriptorSet *o), (d, c, o))
VK_WRAP(vkCreateComputePipelines, HOST,
        (VkDevice d, VkPipelineCache pc, uint32_t n, const VkComputePipelineCreateInfo *c, AC, VkPipeline *o),
        (d, pc, n, c, a, o))

/* ------------------------------------------------------------------ the scenario */

enum { C = 3, H = 8, W = 8, K = 4, B = 2 };
static char g_dir[256], g_model_path[320], g_image_path[320];

static vkr_status build_model(vkr_model **out) {
    vkr_model *m;
    vkr_status s = vkr_model_new("fault", "in", C, H, W, "none", &m);
    if (s) return s;
    const char *layers[] = {
        "{\"name\":\"c1\",\"type\":\"conv2d\",\"filters\":4,\"kernel\":3,\"padding\":\"same\"}",
        "{\"name\":\"bn1\",\"type\":\"batchnorm\",\"epsilon\":0.001,\"momentum\":0.9}",
        "{\"name\":\"r1\",\"type\":\"relu\"}",
        "{\"name\":\"c2\",\"type\":\"conv2d\",\"filters\":4,\"kernel\":3,\"padding\":\"same\"}",
        "{\"name\":\"add\",\"type\":\"add\",\"inputs\":[\"r1\",\"c2\"]}",
        "{\"name\":\"p\",\"type\":\"maxpool\",\"pool\":2}",
        "{\"name\":\"gap\",\"type\":\"gap\"}",
        "{\"name\":\"fc\",\"type\":\"dense\",\"units\":4,\"activation\":\"softmax\"}",
    };
    for (size_t i = 0; i < sizeof layers / sizeof layers[0] && !s; i++) s = vkr_model_append_json(m, layers[i], 3 + i);
    if (s) vkr_model_free(m);
    else *out = m;
    return s;
}

static float g_x[B * C * H * W], g_t[B * K], g_img[C * H * W];

/* The scenario; probs gets the prediction of the image.  Cleans up on every path. */
static vkr_status scenario(float *probs) {
    char out_model[400], out_opt[400], out_npy[400];
    snprintf(out_model, sizeof out_model, "%s/out/model.safetensors", g_dir);
    snprintf(out_opt, sizeof out_opt, "%s/out/optimizer.safetensors", g_dir);
    snprintf(out_npy, sizeof out_npy, "%s/out/probs.npy", g_dir);
    vkr_context_opts co = {.validation = 1, .quiet_validation = 1};
    vkr_context *ctx = NULL;
    vkr_model *m = NULL;
    vkr_graph *g = NULL;
    vkr_status s = vkr_context_create(&co, &ctx);
    if (!s) s = vkr_model_load(g_model_path, &m);
    vkr_graph_opts o = {.batch = B, .training = 1, .recompute = -1, .loss = VKR_LOSS_SOFTMAX_CE,
                        .optimizer = VKR_OPTIM_ADAM,
                        .optim = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-7f}};
    if (!s) s = vkr_graph_create(ctx, m, &o, &g);
    float loss;
    int correct;
    if (!s) s = vkr_graph_train_step(g, g_x, g_t, B, &loss, &correct);
    if (!s) s = vkr_graph_download_weights(g);
    if (!s) s = vkr_model_save(m, out_model);
    if (!s) s = vkr_graph_save_optimizer(g, out_opt);
    if (!s) s = vkr_image_load_ex(g_image_path, H, W, C, VKR_INTERP_BILINEAR, VKR_PREPROC_NONE, g_img);
    if (!s) s = vkr_graph_forward(g, g_img, 1, NULL, probs);
    const int64_t shape[1] = {K};
    if (!s) s = vkr_npy_write(out_npy, probs, 1, shape);
    if (!s && vkr_validation_errors(ctx) + vkr_validation_warnings(ctx))
        s = vkr_fail(VKR_ERR_VALIDATION, "validation layer: %u errors, %u warnings", vkr_validation_errors(ctx),
                     vkr_validation_warnings(ctx));
    vkr_graph_destroy(g);
    vkr_model_free(m);
    /* a failed step must not leave the context in a state the validation layer objects to */
    uint32_t verr = ctx ? vkr_validation_errors(ctx) + vkr_validation_warnings(ctx) : 0;
    vkr_context_destroy(ctx);
    if (verr && s != VKR_ERR_VALIDATION) {
        g_mode = 0;
        return vkr_fail(VKR_ERR_VALIDATION, "validation layer reported %u message(s) after: %s", verr,
                        s ? vkr_last_error() : "success");
    }
    return s;
}

/* Child exit codes (LeakSanitizer exits 23 alone, 1 under ASan, as do ASan's other reports). */
enum { CH_OK = 0, CH_NO_MESSAGE = 40, CH_PARTIAL = 41, CH_WRONG = 42, CH_VALIDATION = 43, CH_SETUP = 44 };

static int rm_rf_out(void) {
    char p[400];
    snprintf(p, sizeof p, "%s/out", g_dir);
    DIR *d = opendir(p);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2]))) continue;
            char f[700];
            snprintf(f, sizeof f, "%s/%s", p, e->d_name);
            unlink(f);
        }
        closedir(d);
    }
    rmdir(p);
    return mkdir(p, 0777);
}

/* Every file under out/ is one of the three outputs and whole. */
static int outputs_whole(int mode, char *why, size_t n) {
    char p[400];
    snprintf(p, sizeof p, "%s/out", g_dir);
    DIR *d = opendir(p);
    if (!d) return snprintf(why, n, "cannot list %s", p), 0;
    struct dirent *e;
    int ok = 1;
    while (ok && (e = readdir(d))) {
        const char *f = e->d_name;
        if (!strcmp(f, ".") || !strcmp(f, "..")) continue;
        char full[700];
        snprintf(full, sizeof full, "%s/%s", p, f);
        vkr_status s = VKR_OK;
        if (!strcmp(f, "model.safetensors") || !strcmp(f, "optimizer.safetensors")) {
            vkr_model *m = NULL;
            if (!strcmp(f, "model.safetensors")) s = vkr_model_load(full, &m);
            else { /* the optimizer state (no graph in it): the counting run's bytes, or a whole new file */
                static char buf[sizeof g_sh->ref_opt];
                FILE *fp = fopen(full, "rb");
                long got = fp ? (long)fread(buf, 1, sizeof buf, fp) : -1;
                if (fp) fclose(fp);
                if (mode == 1 && got > 0 && got < (long)sizeof buf) {
                    memcpy(g_sh->ref_opt, buf, (size_t)got);
                    g_sh->ref_opt_size = got;
                } else if (mode != 2) {
                    s = got > 8 ? VKR_OK : vkr_fail(VKR_ERR_FORMAT, "optimizer state of %ld bytes", got);
                } else if (got != g_sh->ref_opt_size || memcmp(buf, g_sh->ref_opt, 8)) {
                    s = vkr_fail(VKR_ERR_FORMAT, "optimizer state of %ld bytes, not %ld as in the counting run", got,
                                 g_sh->ref_opt_size);
                } else { /* the header (names, shapes, offsets, step) is exactly the counting run's */
                    uint64_t hl;
                    memcpy(&hl, buf, 8);
                    if (hl > (uint64_t)got - 8 || memcmp(buf, g_sh->ref_opt, 8 + hl))
                        s = vkr_fail(VKR_ERR_FORMAT, "optimizer header differs from the counting run's");
                }
            }
            vkr_model_free(m);
        } else if (!strcmp(f, "probs.npy")) {
            vkr_npy a;
            s = vkr_npy_read(full, &a);
            if (!s && a.count != K) s = VKR_ERR_FORMAT;
            if (!s) vkr_npy_free(&a);
        } else {
            s = VKR_ERR_IO;
            vkr_fail(s, "unexpected file (a temporary left behind?)");
        }
        if (s) {
            snprintf(why, n, "%s: %s", f, vkr_last_error());
            ok = 0;
        }
    }
    closedir(d);
    return ok;
}

static void *volatile g_leak_sink;

static int child(int mode, long fail_at) {
    if (mode == 3) { /* leak canary: LeakSanitizer must fail a child that leaks */
        g_leak_sink = malloc(4096);
        g_leak_sink = NULL;
        return CH_OK;
    }
    if (rm_rf_out()) return CH_SETUP;
    cJSON_Hooks hooks = {cjson_malloc, free};
    cJSON_InitHooks(&hooks);
    float probs[K] = {0};
    atomic_store(&g_calls, 0);
    g_fail_at = fail_at;
    g_mode = mode;
    vkr_status s = scenario(probs);
    g_mode = 0;
    g_sh->ok = s == VKR_OK;
    snprintf(g_sh->msg, sizeof g_sh->msg, "%s", s ? vkr_last_error() : "");
    if (mode == 1) {
        if (s) return CH_SETUP;
        memcpy(g_sh->ref_probs, probs, sizeof probs);
        g_sh->ref_nprobs = K;
    }
    char why[512];
    if (!outputs_whole(mode, why, sizeof why)) {
        snprintf(g_sh->msg, sizeof g_sh->msg, "partial output: %s", why);
        return CH_PARTIAL;
    }
    if (s == VKR_ERR_VALIDATION) return CH_VALIDATION;
    if (s && !*g_sh->msg) return CH_NO_MESSAGE;
    if (!s && mode == 2)
        for (int i = 0; i < K; i++)
            if (!(fabsf(probs[i] - g_sh->ref_probs[i]) <= 1e-5f)) return CH_WRONG;
    return CH_OK;
}

/* Runs one child; returns its exit code, or 128 + signal. */
static int run_child(int mode, long fail_at, int timeout_s) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        alarm((unsigned)timeout_s);
        exit(child(mode, fail_at)); /* exit(): LeakSanitizer checks at exit */
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/vkrun-faults.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        printf("FAIL cannot create a temporary folder\n");
        return 1;
    }
    g_sh = mmap(NULL, sizeof *g_sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (g_sh == MAP_FAILED) return 1;
    snprintf(g_model_path, sizeof g_model_path, "%s/in.safetensors", g_dir);
    snprintf(g_image_path, sizeof g_image_path, "%s/in.png", g_dir);

    /* inputs, made by the parent before any Vulkan call (children fork from a clean process) */
    vkr_model *m = NULL;
    CHECK_OK(build_model(&m), "build the model");
    if (m) CHECK_OK(vkr_model_save(m, g_model_path), "save the input model");
    vkr_model_free(m);
    uint32_t r = 12345;
    for (int i = 0; i < B * C * H * W; i++) g_x[i] = (float)((r = r * 1664525u + 1013904223u) >> 8) / (1 << 24);
    for (int b = 0; b < B; b++) g_t[b * K + b % K] = 1;
    unsigned char px[16 * 12 * 3];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (unsigned char)((r = r * 1664525u + 1013904223u) >> 24);
    CHECK(stbi_write_png(g_image_path, 16, 12, 3, px, 16 * 3) != 0, "write the input image");
    if (g_fail) return test_finish();

#ifdef __SANITIZE_ADDRESS__ /* gcc -fsanitize=address (the build-asan of tools/run_tests.sh) */
    /* the leak counts below mean something only if a leaking child fails */
    int canary = run_child(3, 0, 60);
    CHECK(canary == 1 || canary == 23, "LeakSanitizer fails a child that leaks (exit %d)", canary);
#endif
    /* warm-up (fills the pipeline cache so that every later run takes the same path), then count */
    double t0 = now_s();
    int rc = run_child(0, 0, 300);
    CHECK(rc == 0, "warm-up run of the scenario (exit %d: %s)", rc, g_sh->msg);
    t0 = now_s();
    rc = run_child(1, 0, 300);
    double t_one = now_s() - t0;
    CHECK(rc == 0 && g_sh->ncalls > 0, "counting run: %ld injection points, %d distinct call sites, %.2f s (exit %d%s%s)",
          g_sh->ncalls, g_sh->nsites, t_one, rc, *g_sh->msg ? ": " : "", g_sh->msg);
    if (g_fail) return test_finish();
    long n = g_sh->ncalls < MAX_CALLS ? g_sh->ncalls : MAX_CALLS;
    int per_kind[K_KINDS] = {0};
    for (int i = 0; i < g_sh->nsites; i++) per_kind[g_sh->sites[i].kind]++;
    printf("  call sites by kind:");
    for (int k = 0; k < K_KINDS; k++) printf(" %s %d", k_kind_name[k], per_kind[k]);
    printf("\n");

    /* VKRUN_FAULT_ONLY=k: fail call k in this process (no fork), to debug it under gdb */
    const char *only = getenv("VKRUN_FAULT_ONLY");
    if (only && *only) {
        rc = child(2, strtol(only, NULL, 10));
        printf("call %s failing: exit %d: %s\n", only, rc, g_sh->msg);
        return rc;
    }
    const char *se = getenv("VKRUN_FAULT_STRIDE");
    long stride = se && *se ? strtol(se, NULL, 10) : 1;
    char *pick = calloc((size_t)n + 1, 1);
    if (!pick) return 1;
    for (int i = 0; i < g_sh->nsites; i++)
        if (g_sh->sites[i].first_call > 0 && g_sh->sites[i].first_call <= n) pick[g_sh->sites[i].first_call] = 1;
    if (stride > 0)
        for (long k = 1; k <= n; k += stride) pick[k] = 1;

    char *site_done = calloc(MAX_SITES, 1);
    if (!site_done) return 1;
    long runs = 0, crashes = 0, leaks = 0, hangs = 0, no_msg = 0, partial = 0, wrong = 0, valid = 0, other = 0,
         recovered = 0, errors = 0, unreached = 0;
    t0 = now_s();
    for (long k = 1; k <= n; k++) {
        if (!pick[k]) continue;
        g_sh->reached = 0;
        g_sh->failed_site = -1;
        g_sh->msg[0] = 0;
        rc = run_child(2, k, 120);
        runs++;
        int site = g_sh->site_of_call[k - 1];
        const char *what = site >= 0 ? (g_sh->sites[site].vk_name ? g_sh->sites[site].vk_name
                                                                   : k_kind_name[g_sh->sites[site].kind])
                                     : "?";
        if (g_sh->reached && g_sh->failed_site >= 0) site_done[g_sh->failed_site] = 1;
        if (rc == CH_OK) {
            if (!g_sh->reached) unreached++;
            else if (g_sh->ok) recovered++;
            else errors++;
            continue;
        }
        if (rc == 128 + SIGALRM) hangs++;
        else if (rc > 128) crashes++;
        else if (rc == 23 || rc == 1) leaks++; /* LeakSanitizer (23 alone, 1 under ASan) or an ASan report */
        else if (rc == CH_NO_MESSAGE) no_msg++;
        else if (rc == CH_PARTIAL) partial++;
        else if (rc == CH_WRONG) wrong++;
        else if (rc == CH_VALIDATION) valid++;
        else other++;
        Dl_info di = {0};
        void *addr = site >= 0 ? g_sh->sites[site].addr : NULL;
        if (!addr || !dladdr(addr, &di)) di.dli_fname = "?", di.dli_fbase = NULL;
        printf("FAIL (%s:%d) call %ld (%s at %s+0x%lx) failing: exit %d: %s\n", __FILE__, __LINE__, k, what,
               di.dli_fname, (unsigned long)((char *)addr - (char *)di.dli_fbase), rc, g_sh->msg);
        g_fail++;
    }
    double t_all = now_s() - t0;
    int covered = 0;
    for (int i = 0; i < g_sh->nsites; i++) covered += site_done[i];
    printf("  %ld runs in %.1f s: %ld clean errors, %ld recovered, %ld not reached (the path moved)\n", runs, t_all,
           errors, recovered, unreached);
    CHECK(crashes == 0 && hangs == 0, "no crash, no hang (%ld crashes, %ld hangs)", crashes, hangs);
    CHECK(leaks == 0 && other == 0, "no leak and no sanitizer report (%ld leaks or ASan reports, %ld other failures)",
          leaks, other);
    CHECK(no_msg == 0, "every error has a message (%ld without)", no_msg);
    CHECK(partial == 0, "no output half-written or temporary left (%ld)", partial);
    CHECK(wrong == 0 && valid == 0, "recovered runs predict the same; no validation message (%ld wrong, %ld validation)",
          wrong, valid);
    printf("injected %ld of %ld injection points; covered %d of %d call sites\n", runs, n, covered, g_sh->nsites);
    CHECK(covered == g_sh->nsites, "every call site failed at least once (%d of %d)", covered, g_sh->nsites);
    free(pick);
    free(site_done);
    rm_rf_out();
    char p[400];
    snprintf(p, sizeof p, "%s/out", g_dir);
    rmdir(p);
    unlink(g_model_path);
    unlink(g_image_path);
    rmdir(g_dir);
    return test_finish();
}
