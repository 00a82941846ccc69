/* Device layer tests: buffers, sub-allocation, dispatch chains with barriers,
 * timestamps, device selection, limits, pipeline cache, and a deliberately
 * provoked validation error proving that the messenger really counts. */
#include "core/internal.h"
#include "ops/gemm_conv.h"
#include "test_util.h"
#include "vkrun_ops.h"
#include "ops/elem_split.h"

#include <math.h>
#include <string.h>
#include <sys/stat.h>

static void test_roundtrip(vkr_context *ctx) {
    /* larger than the 16 MiB staging buffer, at an odd offset */
    size_t n = 5u << 20;
    float *x = malloc(n * 4), *y = malloc(n * 4);
    for (size_t i = 0; i < n; i++) x[i] = (float)(i % 1000) * 0.5f - 3.0f;
    vkr_buffer *b = NULL;
    CHECK_OK(vkr_buffer_create(ctx, n * 4, &b), "create a 20 MiB buffer");
    if (!b) return;
    CHECK_OK(vkr_buffer_upload(b, 0, x, n * 4), "upload 20 MiB");
    memset(y, 0, n * 4);
    CHECK_OK(vkr_buffer_download(b, 0, y, n * 4), "download 20 MiB");
    CHECK(memcmp(x, y, n * 4) == 0, "round trip preserves every byte");
    float part[3] = {1, 2, 3}, back[3];
    CHECK_OK(vkr_buffer_upload(b, 4 * 12345, part, sizeof part), "upload at an offset");
    CHECK_OK(vkr_buffer_download(b, 4 * 12345, back, sizeof back), "download at an offset");
    CHECK(!memcmp(part, back, sizeof part), "offset round trip");
    CHECK(vkr_buffer_upload(b, n * 4 - 4, part, sizeof part) == VKR_ERR_INVALID, "upload past the end is rejected: %s",
          vkr_last_error());

    /* trivial shader: y = 2x + 0.5 y */
    vkr_buffer *by = NULL;
    for (size_t i = 0; i < n; i++) y[i] = (float)(i % 7);
    CHECK_OK(vkr_buffer_from_floats(ctx, y, n, &by), "create+upload y");
    vkr_cmd *cmd = NULL;
    CHECK_OK(vkr_cmd_begin(ctx, &cmd), "begin command stream");
    CHECK_OK(vkr_buffer_upload(b, 0, x, n * 4), "re-upload x");
    CHECK_OK(vkr_axpby(cmd, n, 2.0f, b, 0.5f, by), "record axpby");
    CHECK_OK(vkr_cmd_submit(cmd), "submit");
    float *got = malloc(n * 4);
    CHECK_OK(vkr_buffer_download(by, 0, got, n * 4), "download result");
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        if (got[i] != 2.0f * x[i] + 0.5f * (float)(i % 7)) bad++;
    CHECK(bad == 0, "shader result exact on %zu floats (%zu mismatches)", n, bad);
    vkr_cmd_free(cmd);
    vkr_buffer_destroy(by);
    vkr_buffer_destroy(b);
    free(x);
    free(y);
    free(got);
}

static void test_suballocation(vkr_context *ctx) {
    uint64_t before = vkr_device_bytes_allocated(ctx);
    vkr_buffer *bufs[64] = {0};
    int ok = 1;
    for (int i = 0; i < 64; i++) ok &= vkr_buffer_create(ctx, 1000 + 37 * i, &bufs[i]) == VKR_OK;
    CHECK(ok, "64 small buffers created");
    uint64_t during = vkr_device_bytes_allocated(ctx);
    CHECK(during - before <= 256ull << 20, "64 buffers share sub-allocated blocks (%.1f MiB allocated)",
          (during - before) / 1048576.0);
    /* distinct, non-overlapping data */
    for (int i = 0; i < 64; i++) {
        float v = (float)i;
        vkr_buffer_upload(bufs[i], 0, &v, 4);
    }
    int distinct = 1;
    for (int i = 0; i < 64; i++) {
        float v = -1;
        vkr_buffer_download(bufs[i], 0, &v, 4);
        distinct &= v == (float)i;
    }
    CHECK(distinct, "sub-allocated buffers do not alias");
    for (int i = 0; i < 64; i += 2) vkr_buffer_destroy(bufs[i]);
    vkr_buffer *again = NULL;
    CHECK_OK(vkr_buffer_create(ctx, 500, &again), "allocation into a freed hole");
    vkr_buffer_destroy(again);
    for (int i = 1; i < 64; i += 2) vkr_buffer_destroy(bufs[i]);
    CHECK(vkr_device_bytes_allocated(ctx) == before, "all blocks returned after freeing (%llu bytes left)",
          (unsigned long long)(vkr_device_bytes_allocated(ctx) - before));
    const vkr_device_info *I = vkr_context_device(ctx);
    vkr_buffer *huge = NULL;
    vkr_status s = vkr_buffer_create(ctx, I->max_memory_allocation_size + 4096, &huge);
    CHECK(s == VKR_ERR_OUT_OF_MEMORY && huge == NULL, "buffer over maxMemoryAllocationSize fails cleanly: %s", vkr_last_error());
}

static void test_chain(vkr_context *ctx) {
    /* a dependent chain: each dispatch reads what the previous one wrote */
    const size_t n = 4099;
    const int steps = 40;
    float *a = malloc(n * 4), *b = malloc(n * 4);
    for (size_t i = 0; i < n; i++) {
        a[i] = (float)i * 0.001f;
        b[i] = 1.0f;
    }
    vkr_buffer *ba = NULL, *bb = NULL, *bc = NULL, *bd = NULL;
    vkr_buffer_from_floats(ctx, a, n, &ba);
    vkr_buffer_from_floats(ctx, b, n, &bb);
    vkr_buffer_from_floats(ctx, b, n, &bc);
    vkr_buffer_from_floats(ctx, b, n, &bd);
    vkr_cmd *cmd = NULL;
    CHECK_OK(vkr_cmd_begin(ctx, &cmd), "begin");
    vkr_status s = VKR_OK;
    for (int k = 0; k < steps && !s; k++) {
        /* alternate a <- 0.5 b + a ; b <- a + 0.25 b */
        s = vkr_axpby(cmd, n, 0.5f, bb, 1.0f, ba);
        if (!s) s = vkr_axpby(cmd, n, 1.0f, ba, 0.25f, bb);
    }
    CHECK_OK(s, "record %d dependent dispatches", 2 * steps);
    uint32_t barriers_chain = vkr_cmd_barrier_count(cmd);
    CHECK(barriers_chain == (uint32_t)(2 * steps - 1), "a barrier between every dependent pair (%u for %u dispatches)",
          barriers_chain, vkr_cmd_dispatch_count(cmd));
    CHECK_OK(vkr_cmd_submit(cmd), "submit chain");
    for (int k = 0; k < steps; k++)
        for (size_t i = 0; i < n; i++) {
            a[i] = 0.5f * b[i] + 1.0f * a[i];
            b[i] = 1.0f * a[i] + 0.25f * b[i];
        }
    float *ga = malloc(n * 4), *gb = malloc(n * 4);
    vkr_buffer_download(ba, 0, ga, n * 4);
    vkr_buffer_download(bb, 0, gb, n * 4);
    double err = 0;
    for (size_t i = 0; i < n; i++) {
        double e1 = fabs(ga[i] - a[i]) / fabs(a[i]), e2 = fabs(gb[i] - b[i]) / fabs(b[i]);
        if (e1 > err) err = e1;
        if (e2 > err) err = e2;
    }
    CHECK(err < 1e-5, "chain result matches the host (max rel err %.2e)", err);

    /* independent dispatches need no barrier */
    vkr_cmd *ind = NULL;
    vkr_cmd_begin(ctx, &ind);
    vkr_axpby(ind, n, 1.0f, ba, 1.0f, bc);
    vkr_axpby(ind, n, 1.0f, ba, 1.0f, bd);
    CHECK(vkr_cmd_barrier_count(ind) == 0, "two writers of different buffers reading the same input: no barrier (%u)",
          vkr_cmd_barrier_count(ind));
    vkr_axpby(ind, n, 1.0f, bc, 1.0f, bd); /* reads bc written above, writes bd written above */
    CHECK(vkr_cmd_barrier_count(ind) == 1, "read-after-write inserts a barrier (%u)", vkr_cmd_barrier_count(ind));
    CHECK_OK(vkr_cmd_submit(ind), "submit independent dispatches");
    /* re-recording the same stream */
    CHECK_OK(vkr_cmd_reset(ind), "reset a finished stream");
    CHECK_OK(vkr_axpby(ind, n, 0.0f, ba, 0.0f, bc), "record again (zero)");
    CHECK_OK(vkr_cmd_submit(ind), "submit again");
    vkr_buffer_download(bc, 0, ga, n * 4);
    int zero = 1;
    for (size_t i = 0; i < n; i++) zero &= ga[i] == 0.0f;
    CHECK(zero, "re-recorded stream ran");
    vkr_cmd_free(ind);
    vkr_cmd_free(cmd);
    vkr_buffer_destroy(ba);
    vkr_buffer_destroy(bb);
    vkr_buffer_destroy(bc);
    vkr_buffer_destroy(bd);
    free(a);
    free(b);
    free(ga);
    free(gb);
}

static void test_timestamps(vkr_context *ctx) {
    if (!vkr_context_device(ctx)->timestamps) {
        SKIP_CHECK("timestamps: device has none");
        return;
    }
    const size_t n = 1 << 20;
    vkr_buffer *x = NULL, *y = NULL;
    vkr_buffer_create(ctx, n * 4, &x);
    vkr_buffer_create(ctx, n * 4, &y);
    vkr_buffer_fill_zero(x);
    vkr_buffer_fill_zero(y);
    vkr_cmd *cmd = NULL;
    vkr_cmd_begin(ctx, &cmd);
    CHECK_OK(vkr_cmd_enable_timestamps(cmd, 8), "enable timestamps");
    vkr_cmd_label(cmd, "first");
    vkr_axpby(cmd, n, 1, x, 1, y);
    vkr_cmd_label(cmd, "second");
    vkr_axpby(cmd, n, 1, x, 1, y);
    CHECK_OK(vkr_cmd_submit(cmd), "submit timed stream");
    CHECK(vkr_cmd_timing_count(cmd) == 2, "two timed dispatches");
    double ms0 = -1, ms1 = -1;
    const char *l0 = NULL, *l1 = NULL;
    CHECK_OK(vkr_cmd_timing(cmd, 0, &ms0, &l0), "read timing 0");
    CHECK_OK(vkr_cmd_timing(cmd, 1, &ms1, &l1), "read timing 1");
    CHECK(ms0 > 0 && ms1 > 0 && ms0 < 10000 && ms1 < 10000, "timings positive and plausible (%.3f ms, %.3f ms)", ms0, ms1);
    CHECK(l0 && l1 && !strcmp(l0, "first") && !strcmp(l1, "second"), "labels kept");
    CHECK(vkr_cmd_timing(cmd, 2, &ms0, NULL) == VKR_ERR_INVALID, "timing index out of range rejected");
    vkr_cmd_free(cmd);
    vkr_buffer_destroy(x);
    vkr_buffer_destroy(y);
}

static void test_limits(vkr_context *ctx) {
    const vkr_device_info *I = vkr_context_device(ctx);
    CHECK(I->max_storage_buffer_range > 0 && I->max_workgroup_invocations > 0 && I->subgroup_size > 0,
          "capability probe filled (range %.0f MiB, invocations %u, subgroup %u)", I->max_storage_buffer_range / 1048576.0,
          I->max_workgroup_invocations, I->subgroup_size);
    /* A binding over maxStorageBufferRange is an error, never a validation message; the
     * element-wise ops split instead.  Where the device range is too large to allocate past
     * (most GPUs: 2-4 GiB), the split runs with the binding limit capped by the test hook at
     * 80 MiB (over 16.7M floats: the grid still spans 2-D). */
    uint64_t range = I->max_storage_buffer_range;
    int real = range + 1024 <= I->max_memory_allocation_size && range + 1024 < (1ull << 31);
    uint64_t lim = real ? range : 80ull << 20;
    uint64_t big = lim + 1024;
    if (!real) vkr__elem_force_chunk_floats(lim / 4);
    vkr_buffer *b = NULL, *y = NULL;
    if (vkr_buffer_create(ctx, big, &b) == VKR_OK && vkr_buffer_create(ctx, 1024, &y) == VKR_OK) {
        vkr_cmd *cmd = NULL;
        vkr_cmd_begin(ctx, &cmd);
        if (real) {
            vkr_pipeline *p = NULL;
            vkr_pipeline_desc d = {.shader = "axpby", .bindings = "ss", .push_size = 12};
            CHECK_OK(vkr_pipeline_get(ctx, &d, &p), "get axpby pipeline");
            vkr_binding bind[2] = {{b, 0, 0}, {y, 0, 0}};
            uint32_t pc[3] = {1, 0, 0};
            vkr_status s = vkr_cmd_dispatch(cmd, p, bind, 2, 2, pc, 1, 1, 1);
            CHECK(s == VKR_ERR_UNSUPPORTED, "binding past maxStorageBufferRange refused: %s", vkr_last_error());
        } else {
            SKIP_CHECK("binding past maxStorageBufferRange (%.0f MiB): too large to allocate on this device",
                       range / 1048576.0);
        }
        /* the element-wise op splits instead (and its grid spans > 65535 groups in x) */
        uint64_t n = big / 4;
        float *h = malloc(big);
        for (uint64_t i = 0; i < n; i++) h[i] = (float)(i % 4093);
        vkr_buffer_upload(b, 0, h, big);
        CHECK_OK(vkr_axpby(cmd, n, 3.0f, b, 0.0f, b), "axpby over %.0f MiB splits into chunks (binding limit %.0f MiB%s)",
                 big / 1048576.0, lim / 1048576.0, real ? "" : ", capped by the test hook");
        CHECK(vkr_cmd_dispatch_count(cmd) == 2, "two chunks dispatched (%u)", vkr_cmd_dispatch_count(cmd));
        CHECK_OK(vkr_cmd_submit(cmd), "submit chunked axpby");
        vkr_buffer_download(b, 0, h, big);
        uint64_t bad = 0;
        for (uint64_t i = 0; i < n; i++) bad += h[i] != 3.0f * (float)(i % 4093);
        CHECK(bad == 0, "every one of %llu floats right across chunks and 2-D grids (%llu wrong)", (unsigned long long)n,
              (unsigned long long)bad);
        free(h);
        vkr_cmd_free(cmd);
    } else {
        CHECK(0, "allocate %.0f MiB for the split test: %s", big / 1048576.0, vkr_last_error());
    }
    vkr__elem_force_chunk_floats(0);
    vkr_buffer_destroy(b);
    vkr_buffer_destroy(y);
    vkr_pipeline *p1 = NULL, *p2 = NULL;
    vkr_pipeline_desc d = {.shader = "axpby", .bindings = "ss", .push_size = 12};
    vkr_pipeline_get(ctx, &d, &p1);
    vkr_pipeline_get(ctx, &d, &p2);
    CHECK(p1 && p1 == p2, "pipelines are cached");
    uint32_t ls[3];
    vkr_pipeline_local_size(p1, ls);
    CHECK(ls[0] == 256 && ls[1] == 1 && ls[2] == 1, "local size read from SPIR-V (%u,%u,%u)", ls[0], ls[1], ls[2]);
    /* a texel GEMM's workgroup is its spec constants LX, LY (local_size_x_id), 8 x 8 without them */
    uint32_t spec[9] = {16, 4, 0, 0, 0, 0, 0, 0, 0};
    vkr_pipeline_desc t = {.shader = "gemm_texel_8x4", .bindings = "ttsts", .push_size = 128, .spec_count = 8, .spec = spec};
    CHECK(vkr_pipeline_get(ctx, &t, &p1) == VKR_OK, "texel pipeline created");
    vkr_pipeline_local_size(p1, ls);
    CHECK(ls[0] == 16 && ls[1] == 4 && ls[2] == 1, "texel local size from its spec constants (%u,%u,%u)", ls[0], ls[1], ls[2]);
    t.spec_count = 0;
    CHECK(vkr_pipeline_get(ctx, &t, &p1) == VKR_OK, "unspecialized texel pipeline created");
    vkr_pipeline_local_size(p1, ls);
    CHECK(ls[0] == 8 && ls[1] == 8 && ls[2] == 1, "unspecialized texel local size = LX, LY defaults (%u,%u,%u)", ls[0],
          ls[1], ls[2]);
    t.spec_count = 9;
    CHECK(vkr_pipeline_get(ctx, &t, &p1) == VKR_ERR_INVALID && strstr(vkr_last_error(), "the shader has 8"),
          "a 9th spec constant refused: %s", vkr_last_error());
    spec[0] = vkr_context_device(ctx)->max_workgroup_invocations;
    t.spec_count = 2;
    CHECK(vkr_pipeline_get(ctx, &t, &p1) == VKR_ERR_INVALID && strstr(vkr_last_error(), "outside the device's limits"),
          "a workgroup past the device's limits refused: %s", vkr_last_error());
    vkr_pipeline_desc bad = {.shader = "no_such_shader", .bindings = "s", .push_size = 0};
    CHECK(vkr_pipeline_get(ctx, &bad, &p1) == VKR_ERR_NOT_FOUND, "unknown shader: %s", vkr_last_error());
    CHECK(vkr_shader_find("axpby") != NULL && vkr_shader_count() >= 1, "embedded shader table has %zu modules",
          vkr_shader_count());
}

static void test_selection(void) {
    vkr_device_info *infos = NULL;
    int n = 0, chosen = -1;
    CHECK_OK(vkr_enumerate_devices(&infos, &n), "enumerate devices (%d)", n);
    if (n == 0) return;
    CHECK_OK(vkr_select_device(infos, n, "0", &chosen), "select by index 0");
    CHECK(chosen == 0, "index 0 chosen");
    char sub[8];
    snprintf(sub, sizeof sub, "%.4s", infos[n - 1].name);
    for (char *c = sub; *c; c++) *c = (char)((*c >= 'a' && *c <= 'z') ? *c - 32 : *c); /* case-insensitive */
    CHECK_OK(vkr_select_device(infos, n, sub, &chosen), "select by name substring \"%s\"", sub);
    CHECK(chosen >= 0 && chosen < n, "name selection valid");
    CHECK(vkr_select_device(infos, n, "99", &chosen) == VKR_ERR_NO_DEVICE, "bad index: %s", vkr_last_error());
    CHECK(vkr_select_device(infos, n, "no-such-gpu-xyz", &chosen) == VKR_ERR_NO_DEVICE, "bad name: %s", vkr_last_error());
    /* default preference on a synthetic list */
    vkr_device_info fake[4];
    memset(fake, 0, sizeof fake);
    vkr_device_type types[4] = {VKR_DEVICE_CPU, VKR_DEVICE_INTEGRATED, VKR_DEVICE_DISCRETE, VKR_DEVICE_VIRTUAL};
    for (int i = 0; i < 4; i++) {
        fake[i].type = types[i];
        snprintf(fake[i].name, sizeof fake[i].name, "dev%d", i);
    }
    const char *env = getenv("VKRUN_DEVICE");
    if (!env || !*env) {
        CHECK_OK(vkr_select_device(fake, 4, NULL, &chosen), "default choice");
        CHECK(chosen == 2, "discrete preferred over integrated, virtual, cpu (chose %d)", chosen);
        CHECK_OK(vkr_select_device(fake, 2, NULL, &chosen), "default among cpu+integrated");
        CHECK(chosen == 1, "integrated preferred over cpu");
    }
    /* contexts on the chosen device by index and by name */
    vkr_context *c1 = test_context("0", 0);
    CHECK(c1 && vkr_context_device(c1)->index == 0, "context on device 0");
    if (c1) {
        test_no_validation_messages(c1, "context by index");
        vkr_context_destroy(c1);
    }
    vkr_context *c2 = test_context(infos[0].name, 0);
    CHECK(c2 && !strcmp(vkr_context_device(c2)->name, infos[0].name), "context by full name");
    if (c2) vkr_context_destroy(c2);
    vkr_context_opts o = {.device = "no-such-gpu-xyz", .validation = 1};
    vkr_context *c3 = NULL;
    CHECK(vkr_context_create(&o, &c3) == VKR_ERR_NO_DEVICE && !c3, "context on a missing device fails: %s", vkr_last_error());
    free(infos);
}

static void test_provoked_validation_error(void) {
    vkr_context *ctx = test_context(NULL, 1);
    if (!ctx) return;
    CHECK(vkr_validation_errors(ctx) == 0, "fresh context has no validation errors");
    /* VUID-VkBufferCreateInfo-usage-requiredbitmask: usage must not be 0 */
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = 64, .usage = 0,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkBuffer b = VK_NULL_HANDLE;
    VkResult r = vkCreateBuffer(ctx->device, &bi, NULL, &b);
    if (r == VK_SUCCESS) vkDestroyBuffer(ctx->device, b, NULL);
    CHECK(vkr_validation_errors(ctx) >= 1, "the messenger caught the deliberate error (%u errors)", vkr_validation_errors(ctx));
    vkr_context_destroy(ctx);
}

static void test_pipeline_cache(void) {
    const char *dir = getenv("VKRUN_CACHE_DIR");
    if (!dir || !*dir) {
        SKIP_CHECK("pipeline cache: VKRUN_CACHE_DIR not set");
        return;
    }
    vkr_context *ctx = test_context(NULL, 0);
    if (!ctx) return;
    vkr_pipeline *p;
    vkr_pipeline_desc d = {.shader = "axpby", .bindings = "ss", .push_size = 12};
    vkr_pipeline_get(ctx, &d, &p);
    const vkr_device_info *I = vkr_context_device(ctx);
    char path[1200];
    snprintf(path, sizeof path, "%s/pipelines-%04x-%04x-%08x.bin", dir, I->vendor_id, I->device_id, I->driver_version);
    test_no_validation_messages(ctx, "pipeline cache");
    vkr_context_destroy(ctx);
    struct stat st;
    uint32_t hdr[2] = {0, 0};
    FILE *hf = fopen(path, "rb");
    if (hf) {
        if (fread(hdr, 4, 2, hf) != 2) hdr[0] = 0;
        fclose(hf);
    }
    /* lavapipe's cache holds only the header; real drivers store the compiled pipelines */
    CHECK(stat(path, &st) == 0 && st.st_size >= 32 && hdr[0] >= 32 && hdr[1] == VK_PIPELINE_CACHE_HEADER_VERSION_ONE,
          "pipeline cache persisted at %s (%lld bytes, valid header)", path, (long long)st.st_size);
    /* a corrupt cache file is ignored, not trusted */
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs("garbage that is not a pipeline cache header at all......", f);
        fclose(f);
    }
    ctx = test_context(NULL, 0);
    CHECK(ctx != NULL, "context with a corrupt cache file still starts");
    if (ctx) {
        CHECK_OK(vkr_pipeline_get(ctx, &d, &p), "pipeline created despite the corrupt cache");
        test_no_validation_messages(ctx, "corrupt cache");
        vkr_context_destroy(ctx);
    }
}

/* vkrun tune's pick: saved next to the pipeline cache, loaded by the next context of the device;
 * an unknown or garbled entry falls back to the default tile. */
static void test_tune_file(void) {
    const char *dir = getenv("VKRUN_CACHE_DIR");
    if (!dir || !*dir) {
        printf("SKIP tune file: VKRUN_CACHE_DIR not set\n");
        return;
    }
    vkr_context *ctx = test_context(NULL, 0);
    if (!ctx) return;
    char path[1200] = "";
    CHECK(vkr__gemm_tune_path(ctx, path, sizeof path) && strstr(path, "/tune-"), "tune file path %s", path);
    CHECK(vkr__gemm_tuned_tile(ctx) == 0 || vkr__gemm_tuned_tile(ctx) < vkr__tiled_config_count(), "tuned tile in range");
    CHECK_OK(vkr__gemm_tune_save(ctx, 2), "tune pick saved");
    vkr_context_destroy(ctx);
    ctx = test_context(NULL, 0);
    if (!ctx) return;
    CHECK(vkr__gemm_tuned_tile(ctx) == 2, "a new context loads the tuned tile (%d)", vkr__gemm_tuned_tile(ctx));
    vkr_context_destroy(ctx);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("tiled gemm_no_such_shader\n", f);
        fclose(f);
    }
    ctx = test_context(NULL, 0);
    if (!ctx) return;
    CHECK(vkr__gemm_tuned_tile(ctx) == 0, "an unknown tuned tile falls back to the default");
    vkr_context_destroy(ctx);
    remove(path);
}

int main(void) {
    test_selection();
    vkr_context *ctx = test_context(NULL, 0);
    if (!ctx) return test_finish();
    printf("device: %s\n", vkr_context_device(ctx)->name);
    test_roundtrip(ctx);
    test_suballocation(ctx);
    test_chain(ctx);
    test_timestamps(ctx);
    test_limits(ctx);
    test_no_validation_messages(ctx, "device tests");
    vkr_context_destroy(ctx);
    test_pipeline_cache();
    test_tune_file();
    test_provoked_validation_error();
    return test_finish();
}
