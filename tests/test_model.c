/* Tests of the model layer: the loader on hand-built (valid and broken) files,
 * save/load round trips, shape inference, editing helpers, .npy files, and —
 * when a Vulkan device is present — the graph runtime against a plain-C double
 * evaluation built from the op references (forward, gradients of one training
 * step with and without batch-statistics BatchNorm, frozen prefixes, one SGD
 * update).  Prints PASS/FAIL lines and "N passed, N failed". */
#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vkrun_model.h"
#include "test_rng.h"
#include "vkrun_npy.h"
#include "ref/add_ref.h"
#include "ref/avgpool_ref.h"
#include "ref/batchnorm_ref.h"
#include "ref/concat_ref.h"
#include "ref/conv2d_ref.h"
#include "ref/dense_ref.h"
#include "ref/gap_ref.h"
#include "ref/maxpool_ref.h"
#include "ref/relu_ref.h"
#include "ref/softmax_ce_ref.h"
#include "ref/softmax_ref.h"
#include "ref/zeropad_ref.h"

void vkr__gemm_force_split(int splits); /* runtime/ops/gemm_conv.h: split-K test hook */

static int g_pass, g_fail, g_skip;
/* absolute bound on a float gradient whose exact value is 0 (sums of O(1) terms cancelling) */
#define TINY_GRAD_ABS 3e-7 /* measured 7.5e-8 on llvmpipe */
static char g_dir[256];

static void result(int ok, const char *name, const char *fmt, ...) {
    char msg[1024] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", name, msg[0] ? ": " : "", msg);
    if (ok) g_pass++;
    else g_fail++;
}

static const char *tmp_path(const char *name) {
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

/* ------------------------------------------------------------ hand-built files */

typedef struct {
    const char *name;
    const char *dtype;
    int ndim;
    int64_t shape[4];
    long long begin, end; /* -1: automatic, back to back */
} tspec;

static const char *k_graph_ok =
    "{\"version\":1,\"name\":\"tiny\",\"source\":\"test\",\"input\":{\"name\":\"in\",\"channels\":1,\"height\":4,"
    "\"width\":4,\"preprocess\":\"none\"},\"classes\":[\"a\",\"b\",\"c\"],\"layers\":["
    "{\"name\":\"in\",\"type\":\"input\"},"
    "{\"name\":\"c1\",\"type\":\"conv2d\",\"inputs\":[\"in\"],\"filters\":2,\"kernel\":[3,3],\"strides\":[1,1],"
    "\"padding\":\"same\",\"use_bias\":true,\"activation\":\"relu\"},"
    "{\"name\":\"g\",\"type\":\"gap\",\"inputs\":[\"c1\"]},"
    "{\"name\":\"d\",\"type\":\"dense\",\"inputs\":[\"g\"],\"units\":3,\"use_bias\":true,\"activation\":\"softmax\"}]}";

static const tspec k_tensors_ok[] = {
    {"c1.weight", "F32", 4, {2, 1, 3, 3}, -1, -1},
    {"c1.bias", "F32", 1, {2}, -1, -1},
    {"d.weight", "F32", 2, {3, 2}, -1, -1},
    {"d.bias", "F32", 1, {3}, -1, -1},
};
#define NT_OK 4

/* Writes a safetensors file.  hlen_delta is added to the true header length
 * in the 8-byte prefix; data_bytes is the size of the data section written
 * (-1: what the offsets need); fill is the float stored everywhere. */
static void write_st(const char *path, const char *graph, const tspec *t, int nt, long long hlen_delta,
                     long long data_bytes, int with_meta, float fill, const char *extra_json) {
    cJSON *h = cJSON_CreateObject();
    if (with_meta) {
        cJSON *meta = cJSON_AddObjectToObject(h, "__metadata__");
        cJSON_AddStringToObject(meta, "format", "vkrun");
        if (graph) cJSON_AddStringToObject(meta, "vkrun_graph", graph);
    }
    long long off = 0, maxend = 0;
    for (int i = 0; i < nt; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dtype", t[i].dtype);
        cJSON *sh = cJSON_AddArrayToObject(o, "shape");
        unsigned long long cnt = 1; /* may wrap on purpose (shapes that lie): unsigned */
        for (int d = 0; d < t[i].ndim; d++) {
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t[i].shape[d]));
            cnt *= (unsigned long long)t[i].shape[d];
        }
        long long b = t[i].begin >= 0 ? t[i].begin : off;
        long long e = t[i].end >= 0 ? t[i].end : b + 4 * (long long)cnt;
        off = e;
        if (e > maxend) maxend = e;
        cJSON *of = cJSON_AddArrayToObject(o, "data_offsets");
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)b));
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)e));
        cJSON_AddItemToObject(h, t[i].name, o);
    }
    char *txt = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    char *full = txt;
    if (extra_json) { /* splice raw text before the final '}' */
        size_t l = strlen(txt);
        full = malloc(l + strlen(extra_json) + 2);
        memcpy(full, txt, l - 1);
        strcpy(full + l - 1, extra_json);
        strcat(full, "}");
        free(txt);
    }
    unsigned long long hl = strlen(full);
    unsigned long long pre = (unsigned long long)((long long)hl + hlen_delta);
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < 8; i++) fputc((int)((pre >> (8 * i)) & 0xff), f);
    fwrite(full, 1, hl, f);
    long long nd = data_bytes >= 0 ? data_bytes : maxend;
    for (long long i = 0; i < nd / 4; i++) fwrite(&fill, 4, 1, f);
    for (long long i = 0; i < nd % 4; i++) fputc(0, f);
    fclose(f);
    free(full);
}

static char *replace(const char *s, const char *a, const char *b) {
    const char *p = strstr(s, a);
    if (!p) {
        fprintf(stderr, "test bug: \"%s\" not in the string\n", a);
        exit(2);
    }
    char *r = malloc(strlen(s) + strlen(b) + 1);
    memcpy(r, s, p - s);
    strcpy(r + (p - s), b);
    strcat(r, p + strlen(a));
    return r;
}

/* Loads path and expects VKR_ERR_FORMAT with every needle in the message. */
static void expect_fail(const char *test, const char *path, const char *needle1, const char *needle2) {
    vkr_model *m = NULL;
    vkr_status s = vkr_model_load(path, &m);
    const char *msg = vkr_last_error();
    int ok = s == VKR_ERR_FORMAT && !m && strstr(msg, needle1) && (!needle2 || strstr(msg, needle2)) && strstr(msg, path);
    result(ok, test, "%s [%s]", msg, vkr_status_name(s));
    vkr_model_free(m);
}

static void graph_case(const char *test, const char *from, const char *to, const char *n1, const char *n2) {
    char *gr = replace(k_graph_ok, from, to);
    const char *p = tmp_path("case.vkr");
    write_st(p, gr, k_tensors_ok, NT_OK, 0, -1, 1, 0.5f, NULL);
    expect_fail(test, p, n1, n2);
    free(gr);
}

/* An architecture .json that does not parse (truncated, empty) is a clear error naming the
 * file; under ASan this also proves the message is built before the text is freed. */
static void test_graph_file_errors(void) {
    static const char *texts[] = {"{\"version\": 1, \"input\": {\"channels\": 3, \"height\": 8, \"layers\": [{\"na", ""};
    for (int i = 0; i < 2; i++) {
        const char *path = tmp_path(i ? "empty.json" : "truncated.json");
        FILE *f = fopen(path, "wb");
        if (f) {
            fputs(texts[i], f);
            fclose(f);
        }
        vkr_model *m = NULL;
        vkr_status s = vkr_model_from_graph_file(path, 1, &m);
        const char *e = vkr_last_error();
        result(s == VKR_ERR_FORMAT && !m && strstr(e, path) && strstr(e, "not valid JSON"),
               i ? "empty graph .json refused" : "truncated graph .json refused", "%s", e);
        vkr_model_free(m);
    }
}

/* Shapes whose sizes overflow 32- or 64-bit arithmetic are refused with a message, never wrapped
 * (a parameter count of 0, a negative height, undefined behaviour under UBSan). */
static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void expect_graph_error(const char *name, const char *json, const char *needle) {
    const char *path = tmp_path("overflow.json");
    write_text(path, json);
    vkr_model *m = NULL;
    vkr_status s = vkr_model_from_graph_file(path, 1, &m);
    result(s == VKR_ERR_FORMAT && !m && strstr(vkr_last_error(), needle), name, "%s", s ? vkr_last_error() : "loaded");
    vkr_model_free(m);
}

static void test_shape_overflow(void) {
    const char *head = "{\"version\": 1, \"name\": \"o\", \"input\": {\"name\": \"in\", \"channels\": 65536, "
                       "\"height\": 8, \"width\": 8, \"preprocess\": \"none\"}, \"layers\": [{\"name\": \"in\", \"type\": \"input\"}";
    char *j = malloc(1 << 20);
    snprintf(j, 1 << 20, "%s, {\"name\": \"c\", \"type\": \"conv2d\", \"inputs\": [\"in\"], \"filters\": 65536, "
             "\"kernel\": [65536, 65536], \"strides\": [1, 1], \"padding\": \"same\", \"use_bias\": true}]}", head);
    expect_graph_error("conv weight of 2^64 elements refused (not 0 parameters)", j, "2^34");
    /* 1100 zeropads of 2^21 rows each on a 1-channel, 1-column input: an int height wraps after
     * 1024 of them (only the per-tensor size was checked) */
    const char *thin = "{\"version\": 1, \"name\": \"o\", \"input\": {\"name\": \"in\", \"channels\": 1, "
                       "\"height\": 8, \"width\": 1, \"preprocess\": \"none\"}, \"layers\": [{\"name\": \"in\", \"type\": \"input\"}";
    size_t n = (size_t)snprintf(j, 1 << 20, "%s", thin);
    for (int i = 0; i < 1100; i++) {
        char prev[16];
        snprintf(prev, sizeof prev, i ? "p%d" : "in", i - 1);
        n += (size_t)snprintf(j + n, (1 << 20) - n, ", {\"name\": \"p%d\", \"type\": \"zeropad\", \"inputs\": [\"%s\"], "
                              "\"padding\": [1048576, 1048576, 0, 0]}", i, prev);
    }
    snprintf(j + n, (1 << 20) - n, "]}");
    expect_graph_error("chained zeropads past 2^30 rows refused", j, "too large");
    /* a concat of 2100 inputs of 2^20 channels each: an int channel sum wraps */
    n = (size_t)snprintf(j, 1 << 20, "%s, {\"name\": \"w\", \"type\": \"conv2d\", \"inputs\": [\"in\"], \"filters\": 1048576, "
                         "\"kernel\": [1, 1], \"strides\": [8, 8], \"padding\": \"valid\", \"use_bias\": false}, "
                         "{\"name\": \"cat\", \"type\": \"concat\", \"inputs\": [", thin);
    for (int i = 0; i < 2100; i++) n += (size_t)snprintf(j + n, (1 << 20) - n, "%s\"w\"", i ? ", " : "");
    snprintf(j + n, (1 << 20) - n, "]}]}");
    expect_graph_error("concat past 2^30 channels refused", j, "too large");
    /* numbers that must be whole are not truncated */
    snprintf(j, 1 << 20, "{\"version\": 1.9, \"name\": \"o\", \"input\": {\"name\": \"in\", \"channels\": 1, \"height\": 8, "
             "\"width\": 8}, \"layers\": [{\"name\": \"in\", \"type\": \"input\"}, {\"name\": \"g\", \"type\": \"gap\", "
             "\"inputs\": [\"in\"]}]}");
    expect_graph_error("graph version 1.9 refused", j, "version");
    snprintf(j, 1 << 20, "{\"version\": 1, \"name\": \"o\", \"input\": {\"name\": \"in\", \"channels\": 2.7, \"height\": 8, "
             "\"width\": 8}, \"layers\": [{\"name\": \"in\", \"type\": \"input\"}, {\"name\": \"g\", \"type\": \"gap\", "
             "\"inputs\": [\"in\"]}]}");
    expect_graph_error("2.7 input channels refused (not truncated to 2)", j, "whole");
    /* layer names: 255 bytes load (the tensor name adds ".weight"), 256 are refused by name */
    for (int len = 255; len <= 256; len++) {
        char nm[300];
        memset(nm, 'n', (size_t)len);
        nm[len] = 0;
        snprintf(j, 1 << 20, "%s, {\"name\": \"%s\", \"type\": \"conv2d\", \"inputs\": [\"in\"], \"filters\": 2, "
                 "\"kernel\": [3, 3], \"strides\": [1, 1], \"padding\": \"same\", \"use_bias\": true}]}", thin, nm);
        if (len == 256) {
            expect_graph_error("a 256-byte layer name is refused, saying the limit", j, "at most 255");
        } else {
            const char *path = tmp_path("longname.json");
            write_text(path, j);
            vkr_model *m = NULL;
            vkr_status s = vkr_model_from_graph_file(path, 1, &m);
            result(!s && m && m->ntensors == 2 && strlen(m->tensors[0].name) == 255 + strlen(".weight"),
                   "a 255-byte layer name loads, with its tensors", "%s", s ? vkr_last_error() : "");
            vkr_model_free(m);
        }
    }
    free(j);
    /* a safetensors tensor whose element count wraps to 0 with offsets [0, 0] */
    const char *p = tmp_path("wrap.vkr");
    tspec t[1] = {{"x", "F32", 3, {1048576, 1048576, 16777216, 0}, 0, 0}};
    write_st(p, k_graph_ok, t, 1, 0, -1, 1, 0.0f, NULL);
    vkr_model *m = NULL;
    vkr_status s = vkr_model_load(p, &m);
    result(s == VKR_ERR_FORMAT && strstr(vkr_last_error(), "2^40"), "tensor shape whose count wraps refused", "%s",
           s ? vkr_last_error() : "loaded");
    vkr_model_free(m);
}

static void test_loader(void) {
    const char *ok = tmp_path("ok.vkr");
    write_st(ok, k_graph_ok, k_tensors_ok, NT_OK, 0, -1, 1, 0.25f, NULL);
    vkr_model *m = NULL;
    vkr_status s = vkr_model_load(ok, &m);
    result(s == VKR_OK && m && m->nlayers == 4 && m->ntensors == 4 && m->nclasses == 3, "load valid model", "%s",
           s ? vkr_last_error() : "");
    if (m) {
        uint64_t tot, tr, ntr;
        vkr_model_param_totals(m, &tot, &tr, &ntr);
        const vkr_layer *c1 = &m->layers[1];
        result(tot == 18 + 2 + 6 + 3 && tr == tot && ntr == 0 && c1->out_c == 2 && c1->out_h == 4 && c1->out_w == 4 &&
                   m->layers[3].out_rank == 2 && m->layers[3].out_c == 3 && c1->rpad[0] == 1 && c1->rpad[1] == 1,
               "param counts and shapes", "total %llu", (unsigned long long)tot);
        /* round trip */
        const char *rt = tmp_path("roundtrip.vkr");
        s = vkr_model_save(m, rt);
        vkr_model *m2 = NULL;
        vkr_status s2 = s ? s : vkr_model_load(rt, &m2);
        int same = !s2 && m2->nlayers == m->nlayers && m2->ntensors == m->ntensors && m2->nclasses == 3 &&
                   !strcmp(m2->classes[2], "c");
        for (int t = 0; same && t < m->ntensors; t++) {
            int u = vkr_model_find_tensor(m2, m->tensors[t].name);
            same = u >= 0 && m2->tensors[u].count == m->tensors[t].count &&
                   !memcmp(m2->tensors[u].data, m->tensors[t].data, m->tensors[t].count * 4);
        }
        for (int i = 0; same && i < m->nlayers; i++) {
            const vkr_layer *a = &m->layers[i], *b = &m2->layers[i];
            same = !strcmp(a->name, b->name) && a->type == b->type && a->filters == b->filters &&
                   a->activation == b->activation && a->pad_mode == b->pad_mode && a->out_c == b->out_c;
        }
        result(same, "save + load round trip", "%s", s2 ? vkr_last_error() : "");
        vkr_model_free(m2);
        /* no temporary file left next to it */
        char cmd[700];
        snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp > /dev/null", g_dir);
        result(system(cmd) != 0, "atomic save leaves no temporary file", NULL);
        /* save into a missing directory fails cleanly */
        s = vkr_model_save(m, "/nonexistent-dir/x.vkr");
        result(s == VKR_ERR_IO, "save to a missing directory fails with VKR_ERR_IO", "%s", vkr_last_error());
        vkr_model_free(m);
    }
    /* damaged containers */
    {
        FILE *f = fopen(ok, "rb");
        fseek(f, 0, SEEK_END);
        long sz = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *buf = malloc(sz);
        if (fread(buf, 1, sz, f) != (size_t)sz) exit(2);
        fclose(f);
        const char *tr = tmp_path("trunc.vkr");
        f = fopen(tr, "wb");
        fwrite(buf, 1, sz - 10, f);
        fclose(f);
        expect_fail("truncated data section", tr, "d.bias", "past the end");
        f = fopen(tr, "wb");
        fwrite(buf, 1, 5, f);
        fclose(f);
        expect_fail("file shorter than 8 bytes", tr, "too short", NULL);
        f = fopen(tr, "wb");
        fwrite(buf, 1, 100, f);
        fclose(f);
        expect_fail("truncated inside the header", tr, "header length", NULL);
        free(buf);
    }
    const char *p = tmp_path("bad.vkr");
    write_st(p, k_graph_ok, k_tensors_ok, NT_OK, 1000000, -1, 1, 0.f, NULL);
    expect_fail("header length larger than the file", p, "header length", NULL);
    write_st(p, k_graph_ok, k_tensors_ok, NT_OK, -5, -1, 1, 0.f, NULL);
    expect_fail("header length too short (cut JSON)", p, "JSON", NULL);
    { /* a header that is JSON but an array: no "parse error at byte -1" */
        FILE *f = fopen(p, "wb");
        if (f) {
            const unsigned char len8[8] = {2, 0, 0, 0, 0, 0, 0, 0};
            fwrite(len8, 1, 8, f);
            fwrite("[]", 1, 2, f);
            fclose(f);
        }
        expect_fail("header [] is not an object", p, "not an object", NULL);
        result(!strstr(vkr_last_error(), "byte -1"), "header []: no byte -1 in the message", "%s", vkr_last_error());
    }
    {
        tspec t[NT_OK];
        memcpy(t, k_tensors_ok, sizeof t);
        t[1].begin = 8, t[1].end = 16; /* inside c1.weight */
        write_st(p, k_graph_ok, t, NT_OK, 0, 200, 1, 0.f, NULL);
        expect_fail("overlapping data_offsets", p, "overlap", "c1.bias");
        memcpy(t, k_tensors_ok, sizeof t);
        t[2].end = 72 + 4 + 20; /* d.weight needs 24 bytes */
        t[2].begin = 80;
        t[3].begin = 120;
        write_st(p, k_graph_ok, t, NT_OK, 0, 200, 1, 0.f, NULL);
        expect_fail("span differs from shape", p, "d.weight", "needs 24");
        memcpy(t, k_tensors_ok, sizeof t);
        t[0].dtype = "F16";
        write_st(p, k_graph_ok, t, NT_OK, 0, 200, 1, 0.f, NULL);
        expect_fail("wrong dtype", p, "c1.weight", "F16");
        memcpy(t, k_tensors_ok, sizeof t);
        t[0].shape[1] = 3;
        write_st(p, k_graph_ok, t, NT_OK, 0, -1, 1, 0.f, NULL);
        expect_fail("weight shape mismatch", p, "c1.weight", "needs [2, 1, 3, 3]");
        write_st(p, k_graph_ok, k_tensors_ok, NT_OK - 1, 0, -1, 1, 0.f, NULL);
        expect_fail("missing tensor", p, "d.bias", "missing");
        tspec t5[NT_OK + 1];
        memcpy(t5, k_tensors_ok, sizeof k_tensors_ok);
        t5[NT_OK] = (tspec){"extra.weight", "F32", 1, {4}, -1, -1};
        write_st(p, k_graph_ok, t5, NT_OK + 1, 0, -1, 1, 0.f, NULL);
        expect_fail("unused tensor", p, "extra.weight", "not used");
    }
    write_st(p, k_graph_ok, k_tensors_ok, NT_OK, 0, -1, 1, 0.f, ",\"d.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}");
    expect_fail("duplicate tensor key", p, "d.bias", "twice");
    write_st(p, k_graph_ok, k_tensors_ok, NT_OK, 0, -1, 0, 0.f, NULL);
    expect_fail("no __metadata__", p, "__metadata__", NULL);
    write_st(p, "{not json", k_tensors_ok, NT_OK, 0, -1, 1, 0.f, NULL);
    expect_fail("graph is not JSON", p, "vkrun_graph", "JSON");
    write_st(p, k_graph_ok, k_tensors_ok, NT_OK, 0, -1, 1, NAN, NULL);
    expect_fail("non-finite weight", p, "c1.weight", "non-finite");
    graph_case("unknown layer type", "\"type\":\"gap\"", "\"type\":\"flatten\"", "\"g\"", "unknown layer type \"flatten\"");
    graph_case("unknown input name", "\"inputs\":[\"c1\"]", "\"inputs\":[\"nope\"]", "\"g\"", "\"nope\"");
    graph_case("input defined later (cycle)", "\"inputs\":[\"in\"]", "\"inputs\":[\"g\"]", "\"c1\"", "later");
    graph_case("self-cycle", "\"inputs\":[\"c1\"]", "\"inputs\":[\"g\"]", "\"g\"", "cycle");
    graph_case("duplicate layer name", "{\"name\":\"g\",", "{\"name\":\"c1\",", "duplicate layer name \"c1\"", NULL);
    graph_case("bad version", "\"version\":1", "\"version\":2", "version 2", NULL);
    graph_case("bad padding", "\"padding\":\"same\"", "\"padding\":\"full\"", "\"c1\"", "full");
    graph_case("dense on a 4-D input", "\"inputs\":[\"g\"]", "\"inputs\":[\"c1\"]", "\"d\"", "[N, F]");
    graph_case("add with one input", "\"type\":\"gap\"", "\"type\":\"add\"", "\"g\"", "2 inputs");
    graph_case("input name mismatch", "\"input\":{\"name\":\"in\"", "\"input\":{\"name\":\"x\"", "input.name", NULL);
    {
        /* a kernel too large for the input: 5x5 valid on 4x4 */
        char *gr = replace(k_graph_ok, "\"kernel\":[3,3],\"strides\":[1,1],\"padding\":\"same\"",
                           "\"kernel\":[5,5],\"strides\":[1,1],\"padding\":\"valid\"");
        tspec t[NT_OK];
        memcpy(t, k_tensors_ok, sizeof t);
        t[0].shape[2] = t[0].shape[3] = 5;
        write_st(p, gr, t, NT_OK, 0, -1, 1, 0.f, NULL);
        expect_fail("window larger than the input", p, "\"c1\"", "larger than");
        free(gr);
    }
    {
        /* add of mismatched shapes */
        const char *g2 =
            "{\"version\":1,\"input\":{\"name\":\"in\",\"channels\":2,\"height\":4,\"width\":4},\"layers\":["
            "{\"name\":\"in\",\"type\":\"input\"},{\"name\":\"p\",\"type\":\"maxpool\",\"inputs\":[\"in\"],\"pool\":2},"
            "{\"name\":\"s\",\"type\":\"add\",\"inputs\":[\"in\",\"p\"]}]}";
        write_st(p, g2, NULL, 0, 0, 0, 1, 0.f, NULL);
        expect_fail("add of mismatched shapes", p, "\"s\"", "\"p\" is [N, 2, 2, 2]");
    }
    /* missing file */
    vkr_model *mm = NULL;
    s = vkr_model_load(tmp_path("does-not-exist.vkr"), &mm);
    result(s == VKR_ERR_IO && !mm, "missing file is VKR_ERR_IO", "%s", vkr_last_error());
}

/* ------------------------------------------------------------ shapes and editing */

static void test_shapes_and_edit(void) {
    vkr_model *m;
    vkr_status s = vkr_model_new("edit", "in", 3, 7, 8, "none", &m);
    if (s) {
        result(0, "model_new", "%s", vkr_last_error());
        return;
    }
    s = vkr_model_append_json(m, "{\"name\":\"c\",\"type\":\"conv2d\",\"filters\":4,\"kernel\":3,\"strides\":2,"
                                 "\"padding\":\"same\"}", 7);
    if (!s) s = vkr_model_append_json(m, "{\"name\":\"p\",\"type\":\"maxpool\",\"pool\":[3,3],\"strides\":[2,2],"
                                         "\"padding\":\"same\"}", 0);
    const vkr_layer *c = &m->layers[1], *pl = &m->layers[2];
    /* in 7x8, k3 s2: out 4x4; total h = 3*2+3-7 = 2 -> (1,1); w = 3*2+3-8 = 1 -> (0,1) */
    result(!s && c->out_h == 4 && c->out_w == 4 && c->rpad[0] == 1 && c->rpad[1] == 1 && c->rpad[2] == 0 &&
               c->rpad[3] == 1 && pl->out_h == 2 && pl->out_w == 2,
           "Keras same padding rule", "conv pads %d %d %d %d, out %dx%d, pool out %dx%d", c->rpad[0], c->rpad[1],
           c->rpad[2], c->rpad[3], c->out_h, c->out_w, pl->out_h, pl->out_w);
    s = vkr_model_infer_shapes(m, 224, 224);
    result(!s && m->layers[1].out_h == 112 && m->layers[1].rpad[0] == 0 && m->layers[1].rpad[1] == 1 &&
               m->layers[2].out_h == 56,
           "infer_shapes at 224x224", "conv out %d pads %d,%d", m->layers[1].out_h, m->layers[1].rpad[0],
           m->layers[1].rpad[1]);
    if (!s) s = vkr_model_append_gap(m, "gap");
    if (!s) s = vkr_model_append_dense(m, "head", 10, VKR_ACT_SOFTMAX, 42);
    const vkr_tensor *W = s ? NULL : vkr_model_param(m, 4, VKR_PARAM_WEIGHT);
    const vkr_tensor *B = s ? NULL : vkr_model_param(m, 4, VKR_PARAM_BIAS);
    double lim = sqrt(6.0 / (4 + 10)), mx = 0;
    int zero_bias = B != NULL;
    for (uint64_t i = 0; W && i < W->count; i++) mx = fmax(mx, fabs(W->data[i]));
    for (uint64_t i = 0; B && i < B->count; i++) zero_bias &= B->data[i] == 0;
    result(W && W->shape[0] == 10 && W->shape[1] == 4 && mx <= lim && mx > 0.5 * lim && zero_bias,
           "append gap + dense: Glorot-uniform weight, zero bias", "max |w| %.3f, limit %.3f", mx, lim);
    s = vkr_model_append_json(m, "{\"name\":\"head\",\"type\":\"relu\"}", 0);
    result(s == VKR_ERR_FORMAT && m->nlayers == 5, "append rejects a duplicate name", "%s", vkr_last_error());
    const char *cls[] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
    vkr_model_set_classes(m, 10, cls);
    vkr_model_set_trainable(m, 0, 2, 0);
    uint64_t tot, tr, ntr;
    vkr_model_param_totals(m, &tot, &tr, &ntr);
    result(tot == 4 * 3 * 9 + 4 + 40 + 10 && ntr == 4 * 3 * 9 + 4, "trainable flags in totals", "total %llu non-trainable %llu",
           (unsigned long long)tot, (unsigned long long)ntr);
    const char *ep = tmp_path("edit.vkr");
    s = vkr_model_save(m, ep);
    vkr_model *m2 = NULL;
    if (!s) s = vkr_model_load(ep, &m2);
    result(!s && m2->nlayers == 5 && m2->nclasses == 10 && !m2->layers[1].trainable && m2->layers[4].trainable &&
               m2->layers[2].pad_mode == VKR_PAD_SAME,
           "edited model saves and reloads", "%s", s ? vkr_last_error() : "");
    if (m2) {
        s = vkr_model_truncate_after(m2, "c");
        result(!s && m2->nlayers == 2 && m2->ntensors == 2, "truncate_after drops later layers and tensors", "%d layers",
               m2->nlayers);
        vkr_model_free(m2);
    }
    vkr_model_free(m);
}

/* ------------------------------------------------------------ npy */

static void test_npy(void) {
    float d[24];
    for (int i = 0; i < 24; i++) d[i] = (float)i - 3.5f;
    int64_t sh[3] = {2, 3, 4};
    const char *p = tmp_path("a.npy");
    vkr_status s = vkr_npy_write(p, d, 3, sh);
    vkr_npy a;
    if (!s) s = vkr_npy_read(p, &a);
    result(!s && a.ndim == 3 && a.shape[2] == 4 && a.count == 24 && !memcmp(a.data, d, sizeof d), "npy round trip", "%s",
           s ? vkr_last_error() : "");
    if (!s) vkr_npy_free(&a);
    int64_t sh1[1] = {5};
    s = vkr_npy_write(p, d, 1, sh1);
    if (!s) s = vkr_npy_read(p, &a);
    result(!s && a.ndim == 1 && a.shape[0] == 5, "npy 1-D round trip", NULL);
    if (!s) vkr_npy_free(&a);
    struct {
        const char *name, *hdr, *needle;
        int extra;
    } bad[] = {
        {"npy float64 rejected", "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", "<f8", 0},
        {"npy Fortran order rejected", "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", "Fortran", 0},
        {"npy truncated data rejected", "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", "truncated", 0},
        {"npy trailing bytes rejected", "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", "trailing", 0},
        {"npy garbage header rejected", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,) ", "malformed", 0},
        /* 2^24 * 2^40 wraps a 64-bit count to 0 when multiplied unchecked */
        {"npy shape whose count wraps rejected",
         "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 16777216, 1099511627776), }", "2^38", 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        FILE *f = fopen(p, "wb");
        char hdr[256];
        snprintf(hdr, sizeof hdr, "%s", bad[i].hdr);
        size_t l = strlen(hdr);
        size_t tot = (10 + l + 1 + 63) / 64 * 64;
        fwrite("\x93NUMPY\x01\x00", 1, 8, f);
        fputc((int)((tot - 10) & 0xff), f);
        fputc((int)((tot - 10) >> 8), f);
        fwrite(hdr, 1, l, f);
        for (size_t k = 10 + l; k < tot - 1; k++) fputc(' ', f);
        fputc('\n', f);
        fwrite(d, 4, 2, f); /* 8 bytes of data */
        fclose(f);
        s = vkr_npy_read(p, &a);
        result(s == VKR_ERR_FORMAT && strstr(vkr_last_error(), bad[i].needle), bad[i].name, "%s", vkr_last_error());
        if (!s) vkr_npy_free(&a);
    }
}

/* ------------------------------------------------------------ reference evaluation (double) */

typedef struct {
    int nl;
    double **val, **grad, **pgrad[VKR_MAX_PARAMS];
    int32_t **argmax;
    double *probs, loss;
} refnet;

static double *dcopy_param(const vkr_model *m, int j, int k) {
    const vkr_tensor *T = vkr_model_param(m, j, k);
    if (!T) return NULL;
    double *d = malloc(T->count * sizeof *d);
    for (uint64_t i = 0; i < T->count; i++) d[i] = T->data[i];
    return d;
}

static uint64_t outf(const vkr_layer *L) { return (uint64_t)L->out_c * L->out_h * L->out_w; }

/* bm[j]: BN in batch-statistics mode; pt[j]: parameters trained (their grads computed). */
static void ref_forward(const vkr_model *m, const float *x, int n, const char *bm, refnet *R) {
    R->nl = m->nlayers;
    R->val = calloc(m->nlayers, sizeof *R->val);
    R->argmax = calloc(m->nlayers, sizeof *R->argmax);
    for (int j = 0; j < m->nlayers; j++) {
        const vkr_layer *L = &m->layers[j];
        uint64_t no = (uint64_t)n * outf(L);
        double *o = R->val[j] = calloc(no, sizeof(double));
        double *in = L->ninputs ? R->val[L->input_idx[0]] : NULL;
        double *P[4] = {0};
        for (int k = 0; k < L->nparam; k++) P[k] = dcopy_param(m, j, k);
        switch (L->type) {
        case VKR_LAYER_INPUT:
            for (uint64_t i = 0; i < no; i++) o[i] = x[i];
            break;
        case VKR_LAYER_CONV2D: {
            vkr_conv2d_shape p = {n, L->in_c, L->in_h, L->in_w, L->out_c, L->kernel[0], L->kernel[1], L->strides[0],
                                  L->strides[1], L->rpad[0], L->rpad[1], L->rpad[2], L->rpad[3]};
            vkr_ref_conv2d_forward(o, in, P[0], P[1], &p);
            if (L->activation == VKR_ACT_RELU) vkr_ref_relu_forward(no, o, o);
            break;
        }
        case VKR_LAYER_DENSE:
            vkr_ref_dense_forward(n, L->in_c, L->out_c, o, in, P[0], P[1]);
            if (L->activation == VKR_ACT_RELU) vkr_ref_relu_forward(no, o, o);
            break; /* softmax: the loss applies it */
        case VKR_LAYER_BATCHNORM: {
            vkr_bn_shape p = {n, L->in_c, L->in_h, L->in_w, (float)L->epsilon, (float)L->momentum, 1};
            if (bm && bm[j]) {
                double *sm = calloc(L->in_c, sizeof(double)), *si = calloc(L->in_c, sizeof(double));
                vkr_ref_batchnorm_train_forward(o, sm, si, in, P[0], P[1], NULL, NULL, &p);
                free(sm);
                free(si);
            } else {
                vkr_ref_batchnorm_infer_forward(o, in, P[0], P[1], P[2], P[3], &p);
            }
            break;
        }
        case VKR_LAYER_RELU:
            vkr_ref_relu_forward(no, o, in);
            break;
        case VKR_LAYER_ADD:
            vkr_ref_add_forward(no, o, in, R->val[L->input_idx[1]]);
            break;
        case VKR_LAYER_ZEROPAD: {
            vkr_pad_shape p = {n, L->in_c, L->in_h, L->in_w, L->pad[0], L->pad[1], L->pad[2], L->pad[3]};
            vkr_ref_zeropad_forward(o, in, &p);
            break;
        }
        case VKR_LAYER_MAXPOOL:
        case VKR_LAYER_AVGPOOL: {
            vkr_pool_shape p = {n, L->in_c, L->in_h, L->in_w, L->kernel[0], L->kernel[1], L->strides[0], L->strides[1],
                                L->rpad[0], L->rpad[1], L->rpad[2], L->rpad[3], L->count_include_pad};
            if (L->type == VKR_LAYER_MAXPOOL) {
                R->argmax[j] = calloc(no, sizeof(int32_t));
                vkr_ref_maxpool_forward(o, R->argmax[j], in, &p);
            } else {
                vkr_ref_avgpool_forward(o, in, &p);
            }
            break;
        }
        case VKR_LAYER_GAP:
            vkr_ref_gap_forward(n, L->in_c, L->in_h * L->in_w, o, in);
            break;
        case VKR_LAYER_CONCAT: {
            uint64_t hw = (uint64_t)L->out_h * L->out_w, off = 0;
            for (int k = 0; k < L->ninputs; k++) {
                const vkr_layer *X = &m->layers[L->input_idx[k]];
                for (int b = 0; b < n; b++)
                    memcpy(o + (b * (uint64_t)L->out_c + off) * hw, R->val[L->input_idx[k]] + b * (uint64_t)X->out_c * hw,
                           X->out_c * hw * sizeof(double));
                off += X->out_c;
            }
            break;
        }
        case VKR_LAYER_SOFTMAX:
            vkr_ref_softmax_forward(n, L->out_c, o, in);
            break;
        case VKR_LAYER_DROPOUT:
            memcpy(o, in, no * sizeof(double));
            break;
        default:
            break;
        }
        for (int k = 0; k < 4; k++) free(P[k]);
    }
}

static void acc(double *dst, const double *src, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) dst[i] += src[i];
}

/* Backward of softmax_ce on the last layer (dense + softmax), gradients of every layer from `stop` on. */
static void ref_backward(const vkr_model *m, const float *targets, int n, const char *bm, int stop, refnet *R) {
    int T = m->nlayers - 1;
    const vkr_layer *LT = &m->layers[T];
    int K = LT->out_c;
    R->grad = calloc(m->nlayers, sizeof *R->grad);
    for (int k = 0; k < 4; k++) R->pgrad[k] = calloc(m->nlayers, sizeof *R->pgrad[k]);
    for (int j = 0; j < m->nlayers; j++) R->grad[j] = calloc((uint64_t)n * outf(&m->layers[j]), sizeof(double));
    double *tg = malloc((size_t)n * K * sizeof *tg), res[2];
    for (int i = 0; i < n * K; i++) tg[i] = targets[i];
    R->probs = malloc((size_t)n * K * sizeof(double));
    vkr_ref_softmax_ce_forward(n, K, res, R->probs, R->val[T], tg);
    R->loss = res[0];
    vkr_ref_softmax_ce_backward(n, K, R->grad[T], R->probs, tg);
    free(tg);
    for (int j = T; j >= stop && j > 0; j--) {
        const vkr_layer *L = &m->layers[j];
        uint64_t no = (uint64_t)n * outf(L);
        double *dout = R->grad[j], *in = L->ninputs ? R->val[L->input_idx[0]] : NULL;
        uint64_t nin = L->ninputs ? (uint64_t)n * outf(&m->layers[L->input_idx[0]]) : 0;
        double *din = calloc(nin ? nin : 1, sizeof(double));
        double *P[4] = {0};
        for (int k = 0; k < L->nparam; k++) {
            P[k] = dcopy_param(m, j, k);
            const vkr_tensor *Tt = vkr_model_param(m, j, k);
            if (Tt) R->pgrad[k][j] = calloc(Tt->count, sizeof(double));
        }
        double **pg = (double *[4]){R->pgrad[0][j], R->pgrad[1][j], R->pgrad[2][j], R->pgrad[3][j]};
        switch (L->type) {
        case VKR_LAYER_CONV2D: {
            vkr_conv2d_shape p = {n, L->in_c, L->in_h, L->in_w, L->out_c, L->kernel[0], L->kernel[1], L->strides[0],
                                  L->strides[1], L->rpad[0], L->rpad[1], L->rpad[2], L->rpad[3]};
            if (L->activation == VKR_ACT_RELU) vkr_ref_relu_backward(no, dout, dout, R->val[j]);
            vkr_ref_conv2d_backward(din, pg[0], pg[1], dout, in, P[0], &p);
            break;
        }
        case VKR_LAYER_DENSE:
            if (L->activation == VKR_ACT_RELU) vkr_ref_relu_backward(no, dout, dout, R->val[j]);
            vkr_ref_dense_backward(n, L->in_c, L->out_c, din, pg[0], pg[1], dout, in, P[0]);
            break;
        case VKR_LAYER_BATCHNORM: {
            vkr_bn_shape p = {n, L->in_c, L->in_h, L->in_w, (float)L->epsilon, (float)L->momentum, 1};
            if (bm && bm[j]) {
                double *sm = calloc(L->in_c, sizeof(double)), *si = calloc(L->in_c, sizeof(double));
                double *tmp = calloc(no, sizeof(double));
                vkr_ref_batchnorm_train_forward(tmp, sm, si, in, P[0], P[1], NULL, NULL, &p);
                vkr_ref_batchnorm_train_backward(din, pg[0], pg[1], dout, in, P[0], sm, si, &p);
                free(sm);
                free(si);
                free(tmp);
            } else {
                vkr_ref_batchnorm_infer_backward(din, pg[0], pg[1], dout, in, P[0], P[2], P[3], &p);
            }
            break;
        }
        case VKR_LAYER_RELU:
            vkr_ref_relu_backward(no, din, dout, R->val[j]);
            break;
        case VKR_LAYER_ADD:
            acc(R->grad[L->input_idx[1]], dout, no);
            memcpy(din, dout, no * sizeof(double));
            break;
        case VKR_LAYER_DROPOUT:
            memcpy(din, dout, no * sizeof(double));
            break;
        case VKR_LAYER_ZEROPAD: {
            vkr_pad_shape p = {n, L->in_c, L->in_h, L->in_w, L->pad[0], L->pad[1], L->pad[2], L->pad[3]};
            vkr_ref_zeropad_backward(din, dout, &p);
            break;
        }
        case VKR_LAYER_MAXPOOL:
        case VKR_LAYER_AVGPOOL: {
            vkr_pool_shape p = {n, L->in_c, L->in_h, L->in_w, L->kernel[0], L->kernel[1], L->strides[0], L->strides[1],
                                L->rpad[0], L->rpad[1], L->rpad[2], L->rpad[3], L->count_include_pad};
            if (L->type == VKR_LAYER_MAXPOOL) vkr_ref_maxpool_backward(din, dout, R->argmax[j], &p);
            else vkr_ref_avgpool_backward(din, dout, &p);
            break;
        }
        case VKR_LAYER_GAP:
            vkr_ref_gap_backward(n, L->in_c, L->in_h * L->in_w, din, dout);
            break;
        case VKR_LAYER_CONCAT: {
            uint64_t hw = (uint64_t)L->out_h * L->out_w, off = 0;
            for (int k = 0; k < L->ninputs; k++) {
                const vkr_layer *X = &m->layers[L->input_idx[k]];
                double *gx = R->grad[L->input_idx[k]];
                for (int b = 0; b < n; b++)
                    acc(gx + b * (uint64_t)X->out_c * hw, dout + (b * (uint64_t)L->out_c + off) * hw, X->out_c * hw);
                off += X->out_c;
            }
            nin = 0; /* already accumulated */
            break;
        }
        default:
            break;
        }
        if (nin) acc(R->grad[L->input_idx[0]], din, nin);
        free(din);
        for (int k = 0; k < 4; k++) free(P[k]);
    }
}

static void ref_free(refnet *R) {
    for (int j = 0; j < R->nl; j++) {
        if (R->val) free(R->val[j]);
        if (R->grad) free(R->grad[j]);
        if (R->argmax) free(R->argmax[j]);
        for (int k = 0; k < 4; k++)
            if (R->pgrad[k]) free(R->pgrad[k][j]);
    }
    free(R->val);
    free(R->grad);
    free(R->argmax);
    for (int k = 0; k < 4; k++) free(R->pgrad[k]);
    free(R->probs);
    memset(R, 0, sizeof *R);
}

static double max_rel(const float *got, const double *ref, uint64_t n, double *max_abs_out) {
    double ma = 0, mr = 0;
    for (uint64_t i = 0; i < n; i++) {
        double e = fabs(got[i] - ref[i]);
        if (!(e <= ma)) ma = e; /* NaN propagates */
        if (fabs(ref[i]) > mr) mr = fabs(ref[i]);
    }
    if (max_abs_out) *max_abs_out = ma;
    return ma / (mr > 1e-30 ? mr : 1e-30);
}

/* ------------------------------------------------------------ device tests */


/* The end-to-end model: residual fan-out, fused activations, in-place relu,
 * odd sizes, asymmetric padding, 3-input concat with a repeated input, add(x, x), dropout. */
static vkr_status build_e2e(const char *path) {
    vkr_model *m;
    vkr_status s = vkr_model_new("e2e", "in", 3, 9, 7, "none", &m);
    if (s) return s;
    const char *layers[] = {
        "{\"name\":\"c1\",\"type\":\"conv2d\",\"filters\":6,\"kernel\":3,\"padding\":\"same\"}",
        "{\"name\":\"bn1\",\"type\":\"batchnorm\",\"epsilon\":0.001,\"momentum\":0.9}",
        "{\"name\":\"r1\",\"type\":\"relu\"}",
        "{\"name\":\"mp\",\"type\":\"maxpool\",\"pool\":2,\"strides\":2,\"padding\":\"same\"}",
        "{\"name\":\"c2\",\"type\":\"conv2d\",\"filters\":6,\"kernel\":1,\"activation\":\"relu\"}",
        "{\"name\":\"add\",\"type\":\"add\",\"inputs\":[\"mp\",\"c2\"]}",
        "{\"name\":\"zp\",\"type\":\"zeropad\",\"padding\":[1,0,0,1]}",
        "{\"name\":\"ap\",\"type\":\"avgpool\",\"pool\":3,\"strides\":1,\"count_include_pad\":false}",
        "{\"name\":\"c3\",\"type\":\"conv2d\",\"filters\":4,\"kernel\":[3,2],\"strides\":2,\"padding\":[1,1,0,1],\"use_bias\":false}",
        "{\"name\":\"bn2\",\"type\":\"batchnorm\",\"epsilon\":0.01}",
        "{\"name\":\"cat\",\"type\":\"concat\",\"inputs\":[\"bn2\",\"c3\",\"bn2\"]}",
        "{\"name\":\"twice\",\"type\":\"add\",\"inputs\":[\"cat\",\"cat\"]}",
        "{\"name\":\"gap\",\"type\":\"gap\"}",
        "{\"name\":\"drop\",\"type\":\"dropout\",\"rate\":0.5}",
        "{\"name\":\"fc1\",\"type\":\"dense\",\"units\":7,\"activation\":\"relu\"}",
        "{\"name\":\"fc2\",\"type\":\"dense\",\"units\":5,\"activation\":\"softmax\"}",
    };
    for (size_t i = 0; i < sizeof layers / sizeof layers[0] && !s; i++) s = vkr_model_append_json(m, layers[i], 100 + i);
    if (!s) {
        /* random BN statistics and affine parameters, random biases */
        for (int j = 0; j < m->nlayers; j++) {
            vkr_layer *L = &m->layers[j];
            for (int k = 0; k < L->nparam; k++) {
                vkr_tensor *T = vkr_model_param(m, j, k);
                if (!T) continue;
                for (uint64_t i = 0; i < T->count; i++) {
                    if (L->type == VKR_LAYER_BATCHNORM)
                        T->data[i] = (float)(k == VKR_PARAM_VAR ? 0.5 + urand() : k == VKR_PARAM_GAMMA ? 0.5 + urand()
                                                                                   : urand() - 0.5);
                    else if (k == VKR_PARAM_BIAS)
                        T->data[i] = (float)(0.2 * (urand() - 0.5));
                }
            }
        }
        s = vkr_model_save(m, path);
    }
    vkr_model_free(m);
    return s;
}

static void test_device(void) {
    vkr_context *ctx = NULL;
    vkr_context_opts co = {.validation = -1};
    vkr_status s = vkr_context_create(&co, &ctx);
    if (s) {
        printf("SKIP device tests: no Vulkan device (%s)\n", vkr_last_error());
        g_skip++;
        return;
    }
    const char *mp = tmp_path("e2e.vkr");
    s = build_e2e(mp);
    vkr_model *m = NULL;
    if (!s) s = vkr_model_load(mp, &m);
    result(!s, "build, save and load the end-to-end model", "%s", s ? vkr_last_error() : "");
    if (s) {
        vkr_context_destroy(ctx);
        return;
    }
    const int N = 3, NL = m->nlayers, T = NL - 1;
    uint64_t nin = (uint64_t)N * 3 * 9 * 7;
    float *x = malloc(nin * sizeof *x), tg[3 * 5] = {0};
    for (uint64_t i = 0; i < nin; i++) x[i] = (float)(2 * urand() - 1);
    for (int b = 0; b < N; b++) tg[b * 5 + (b * 2 + 1) % 5] = 1;
    /* --- inference */
    vkr_graph *g = NULL;
    vkr_graph_opts o = {.batch = 4};
    s = vkr_graph_create(ctx, m, &o, &g);
    result(!s, "graph create (inference)", "%s", s ? vkr_last_error() : "");
    refnet R = {0};
    ref_forward(m, x, N, NULL, &R);
    if (!s) {
        float y[3 * 5];
        s = vkr_graph_forward(g, x, N, NULL, y);
        double *p = malloc(N * 5 * sizeof *p);
        vkr_ref_softmax_forward(N, 5, p, R.val[T]);
        double ma, e = s ? 1 : max_rel(y, p, N * 5, &ma);
        result(!s && e < 1e-5, "forward vs double reference (softmax output)", "max rel %.2e %s", e,
               s ? vkr_last_error() : "");
        free(p);
        int gi = vkr_model_find_layer(m, "gap");
        float feat[3 * 12];
        s = vkr_graph_forward(g, x, N, "gap", feat);
        e = s ? 1 : max_rel(feat, R.val[gi], N * 12, &ma);
        result(!s && e < 1e-5, "intermediate layer output (gap features)", "max rel %.2e %s", e, s ? vkr_last_error() : "");
        int ci = vkr_model_find_layer(m, "add");
        float *fa = malloc((size_t)N * outf(&m->layers[ci]) * sizeof(float));
        s = vkr_graph_forward(g, x, 2, "add", fa);
        e = s ? 1 : max_rel(fa, R.val[ci], 2 * outf(&m->layers[ci]), &ma);
        result(!s && e < 1e-5, "intermediate 4-D output at n < batch", "max rel %.2e %s", e, s ? vkr_last_error() : "");
        free(fa);
        vkr_graph_memory mem;
        vkr_graph_memory_info(g, &mem);
        result(mem.activations < mem.naive, "liveness planning reuses buffers", "planned %llu bytes, naive %llu",
               (unsigned long long)mem.activations, (unsigned long long)mem.naive);
        float loss;
        int correct;
        s = vkr_graph_eval_batch(g, x, tg, N, &loss, &correct);
        refnet R2 = {0};
        ref_forward(m, x, N, NULL, &R2);
        ref_backward(m, tg, N, NULL, NL, &R2);
        result(!s && fabs(loss - R2.loss) < 1e-5 * fmax(1, fabs(R2.loss)), "eval_batch loss", "%.6f vs %.6f %s", loss,
               R2.loss, s ? vkr_last_error() : "");
        ref_free(&R2);
        s = vkr_graph_forward(g, x, 5, NULL, y);
        result(s == VKR_ERR_INVALID, "n > batch rejected", "%s", vkr_last_error());
        vkr_graph_destroy(g);
        g = NULL;
    }
    ref_free(&R);
    /* --- training gradients: BN in inference mode (bn_train 0) and batch mode (bn_train 1), freeze 0 and 6 */
    /* split: weight / bias gradients forced into 3 split-K partials (vkr__gemm_force_split):
     * the graph must size and lend the scratch (mem.scratch > 0) and get the same gradients */
    struct {
        int bn_train, freeze, split;
    } cases[] = {{0, 0, 0}, {1, 0, 0}, {1, 6, 0}, {1, 0, 3}};
    for (int ci = 0; ci < 4; ci++) {
        vkr_graph_opts to = {.batch = N, .training = 1, .bn_train = cases[ci].bn_train, .freeze = cases[ci].freeze,
                             .optimizer = VKR_OPTIM_SGD};
        to.optim.lr = 0.1f;
        vkr__gemm_force_split(cases[ci].split);
        s = vkr_graph_create(ctx, m, &to, &g);
        char name[160];
        snprintf(name, sizeof name, "training graph bn_train=%d freeze=%d%s", cases[ci].bn_train, cases[ci].freeze,
                 cases[ci].split ? " split-K 3" : "");
        if (!s && cases[ci].split) {
            vkr_graph_memory mem;
            vkr_graph_memory_info(g, &mem);
            result(mem.scratch > 0, "graph plans split-K scratch", "%llu bytes", (unsigned long long)mem.scratch);
        }
        if (s) {
            result(0, name, "%s", vkr_last_error());
            continue;
        }
        char bm[64] = {0};
        for (int j = 0; j < NL; j++)
            bm[j] = cases[ci].bn_train && j >= cases[ci].freeze && m->layers[j].type == VKR_LAYER_BATCHNORM;
        refnet Rt = {0};
        ref_forward(m, x, N, bm, &Rt);
        ref_backward(m, tg, N, bm, 1, &Rt);
        float loss = 0;
        int correct = -1;
        s = vkr_graph_backward_only(g, x, tg, N, &loss, &correct);
        double worst = 0;
        char worst_name[128] = "";
        int ngrads = 0, frozen_ok = 1;
        for (int j = 1; j < NL && !s; j++) {
            const vkr_layer *L = &m->layers[j];
            for (int k = 0; k < L->nparam; k++) {
                const vkr_tensor *Tt = vkr_model_param(m, j, k);
                if (!Tt || !vkr_param_slot_trainable(L->type, k)) continue;
                float *gg = malloc(Tt->count * sizeof *gg);
                vkr_status sg = vkr_graph_download_grad(g, Tt->name, gg);
                if (j < cases[ci].freeze) {
                    frozen_ok &= sg == VKR_ERR_INVALID;
                } else if (sg) {
                    worst = 1;
                    snprintf(worst_name, sizeof worst_name, "%s: %s", Tt->name, vkr_last_error());
                } else {
                    double ma, e = max_rel(gg, Rt.pgrad[k][j], Tt->count, &ma), mref = 0;
                    for (uint64_t q = 0; q < Tt->count; q++)
                        if (fabs(Rt.pgrad[k][j][q]) > mref) mref = fabs(Rt.pgrad[k][j][q]);
                    /* a reference that is 0 in theory (a conv bias before batch-statistics BN) has no
                     * scale to be relative to: its float result is rounding noise, bounded absolutely */
                    if (mref < 1e-9) {
                        printf("  %s: reference ~0 (max %.1e), max|got| %.2e\n", Tt->name, mref, ma);
                        e = ma <= TINY_GRAD_ABS ? 0 : 1;
                    }
                    ngrads++;
                    if (!(e <= worst)) {
                        worst = e;
                        snprintf(worst_name, sizeof worst_name, "%s", Tt->name);
                    }
                }
                free(gg);
            }
        }
        result(!s && worst < 2e-4 && ngrads > 0 && frozen_ok && fabs(loss - Rt.loss) < 1e-5,
               name, "%d parameter gradients vs double reference, max rel %.2e (%s), loss %.6f vs %.6f %s", ngrads,
               worst, worst_name, loss, Rt.loss, s ? vkr_last_error() : "");
        if (ci == 0 && !s) {
            /* one SGD step: w' = w - lr * grad */
            s = vkr_graph_train_step(g, x, tg, N, &loss, &correct);
            vkr_model *m2 = NULL;
            vkr_status s2 = vkr_model_load(mp, &m2); /* pristine copy */
            if (!s) s = vkr_graph_download_weights(g);
            double we = 0;
            for (int j = 1; j < NL && !s && !s2; j++)
                for (int k = 0; k < m->layers[j].nparam; k++) {
                    const vkr_tensor *A = vkr_model_param(m, j, k), *B = vkr_model_param(m2, j, k);
                    if (!A) continue;
                    int tr = vkr_param_slot_trainable(m->layers[j].type, k);
                    for (uint64_t i = 0; i < A->count; i++) {
                        double want = tr ? B->data[i] - 0.1 * Rt.pgrad[k][j][i] : B->data[i];
                        double e = fabs(A->data[i] - want) / fmax(1e-3, fabs(want));
                        if (e > we) we = e;
                    }
                }
            result(!s && !s2 && we < 1e-4 && vkr_graph_step(g) == 1, "SGD step updates the weights", "max rel %.2e %s", we,
                   s ? vkr_last_error() : "");
            /* restore the model's weights */
            if (m2) {
                for (int t = 0; t < m->ntensors; t++) {
                    int u = vkr_model_find_tensor(m2, m->tensors[t].name);
                    memcpy(m->tensors[t].data, m2->tensors[u].data, m->tensors[t].count * 4);
                }
                vkr_model_free(m2);
            }
        }
        if (ci == 1 && !s) {
            /* BN running statistics move in batch mode: running = m*running + (1-m)*batch */
            s = vkr_graph_download_weights(g);
            int bi = vkr_model_find_layer(m, "bn1");
            const vkr_tensor *rm = vkr_model_param(m, bi, VKR_PARAM_MEAN);
            vkr_model *m2 = NULL;
            vkr_status s2 = vkr_model_load(mp, &m2);
            double e = 0;
            if (!s && !s2) {
                const vkr_layer *L = &m->layers[bi];
                vkr_bn_shape p = {N, L->in_c, L->in_h, L->in_w, (float)L->epsilon, (float)L->momentum, 1};
                double *rmean = dcopy_param(m2, bi, VKR_PARAM_MEAN), *rvar = dcopy_param(m2, bi, VKR_PARAM_VAR);
                double *sm = calloc(L->in_c, 8), *si = calloc(L->in_c, 8), *o2 = calloc(N * outf(L), 8);
                double *gm = dcopy_param(m2, bi, 0), *bt = dcopy_param(m2, bi, 1);
                vkr_ref_batchnorm_train_forward(o2, sm, si, Rt.val[L->input_idx[0]], gm, bt, rmean, rvar, &p);
                e = max_rel(rm->data, rmean, rm->count, NULL);
                free(rmean), free(rvar), free(sm), free(si), free(o2), free(gm), free(bt);
            }
            result(!s && !s2 && e < 1e-5, "BN running mean updated in batch mode (downloaded)", "max rel %.2e", e);
            if (m2) {
                for (int t = 0; t < m->ntensors; t++) {
                    int u = vkr_model_find_tensor(m2, m->tensors[t].name);
                    memcpy(m->tensors[t].data, m2->tensors[u].data, m->tensors[t].count * 4);
                }
                vkr_model_free(m2);
            }
        }
        ref_free(&Rt);
        vkr_graph_destroy(g);
        g = NULL;
    }
    vkr__gemm_force_split(0);
    /* optimizer state save/load: two Adam steps in one graph == one step, save, new graph, load, one step */
    {
        vkr_graph_opts ao = {.batch = N, .training = 1, .bn_train = 1, .optimizer = VKR_OPTIM_ADAM};
        ao.optim.lr = 0.01f, ao.optim.beta1 = 0.9f, ao.optim.beta2 = 0.999f, ao.optim.eps = 1e-7f;
        vkr_graph *ga = NULL, *gb = NULL;
        const char *op = tmp_path("opt.safetensors");
        float l1, l2;
        int c1, c2;
        s = vkr_graph_create(ctx, m, &ao, &ga);
        if (!s) s = vkr_graph_train_step(ga, x, tg, N, &l1, &c1);
        if (!s) s = vkr_graph_save_optimizer(ga, op);
        if (!s) s = vkr_graph_download_weights(ga);
        if (!s) s = vkr_graph_create(ctx, m, &ao, &gb);
        if (!s) s = vkr_graph_load_optimizer(gb, op);
        if (!s) s = vkr_graph_train_step(ga, x, tg, N, &l1, &c1);
        if (!s) s = vkr_graph_train_step(gb, x, tg, N, &l2, &c2);
        float *wa = NULL;
        double e = 1;
        int t0 = vkr_model_find_tensor(m, "c1.weight");
        if (!s) s = vkr_graph_download_weights(ga);
        if (!s) {
            wa = malloc(m->tensors[t0].count * 4);
            memcpy(wa, m->tensors[t0].data, m->tensors[t0].count * 4);
            s = vkr_graph_download_weights(gb);
        }
        if (!s) {
            e = 0;
            for (uint64_t i = 0; i < m->tensors[t0].count; i++) e = fmax(e, fabs(wa[i] - m->tensors[t0].data[i]));
        }
        result(!s && e == 0 && l1 == l2 && vkr_graph_step(gb) == 2, "optimizer state save + load resumes exactly",
               "max diff %.3g, loss %.6f vs %.6f %s", e, l1, l2, s ? vkr_last_error() : "");
        free(wa);
        ao.optimizer = VKR_OPTIM_SGD;
        vkr_graph_destroy(gb);
        gb = NULL;
        s = vkr_graph_create(ctx, m, &ao, &gb);
        if (!s) s = vkr_graph_load_optimizer(gb, op);
        result(s == VKR_ERR_FORMAT && strstr(vkr_last_error(), "adam"), "optimizer state of another optimizer rejected",
               "%s", vkr_last_error());
        vkr_graph_destroy(ga);
        vkr_graph_destroy(gb);
        /* checkpoint metadata travels with the model file */
        s = vkr_model_set_meta(m, "vkrun_checkpoint", "{\"epoch\":3}");
        const char *cp = tmp_path("ckpt.vkr");
        if (!s) s = vkr_model_save(m, cp);
        vkr_model *m3 = NULL;
        if (!s) s = vkr_model_load(cp, &m3);
        const char *v = m3 ? vkr_model_get_meta(m3, "vkrun_checkpoint") : NULL;
        result(!s && v && !strcmp(v, "{\"epoch\":3}") && vkr_model_set_meta(m, "format", "x") == VKR_ERR_INVALID,
               "metadata set/get/save/load", "%s", s ? vkr_last_error() : "");
        if (m3) {
            vkr_model_set_meta(m3, "vkrun_checkpoint", NULL);
            result(vkr_model_get_meta(m3, "vkrun_checkpoint") == NULL, "metadata removal", NULL);
        }
        vkr_model_free(m3);
    }
    /* memory that does not fit fails clearly */
    {
        vkr_graph_opts big = {.batch = 1 << 20, .micro_batch = 1 << 20, .height = 512, .width = 512};
        s = vkr_graph_create(ctx, m, &big, &g);
        result(s == VKR_ERR_OUT_OF_MEMORY && strstr(vkr_last_error(), "MiB"),
               "too large a forced micro-batch fails naming the memory", "%s", vkr_last_error());
        vkr_graph_destroy(g);
        g = NULL;
        vkr_graph_opts huge = {.batch = 2, .height = 20000, .width = 20000};
        s = vkr_graph_create(ctx, m, &huge, &g);
        result(s == VKR_ERR_UNSUPPORTED && strstr(vkr_last_error(), "maxStorageBufferRange"),
               "an image too large for one binding fails naming the limit", "%s", vkr_last_error());
        vkr_graph_destroy(g);
        g = NULL;
        /* a batch that does not fit whole is planned as micro-batches */
        vkr_graph_opts auto_mb = {.batch = 1 << 20, .height = 64, .width = 64};
        s = vkr_graph_create(ctx, m, &auto_mb, &g);
        int mb = s ? 0 : vkr_graph_micro_batch(g);
        result(!s && mb > 1 && mb < (1 << 20), "a batch of 2^20 images is planned as micro-batches", "micro-batch %d %s",
               mb, s ? vkr_last_error() : "");
        vkr_graph_destroy(g);
    }
    int verr = vkr_validation_enabled(ctx) ? (int)(vkr_validation_errors(ctx) + vkr_validation_warnings(ctx)) : 0;
    result(verr == 0, "no validation messages", "%d (validation %s)", verr, vkr_validation_enabled(ctx) ? "on" : "off");
    free(x);
    vkr_model_free(m);
    vkr_context_destroy(ctx);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/vkrun-test-model-%d", (int)getpid());
    mkdir(g_dir, 0755);
    test_loader();
    test_graph_file_errors();
    test_shape_overflow();
    test_shapes_and_edit();
    test_npy();
    test_device();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", g_dir);
    if (g_skip) printf("%d passed, %d failed, %d skipped\n", g_pass, g_fail, g_skip);
    else printf("%d passed, %d failed\n", g_pass, g_fail);
    if (g_fail) return 1;
    if (g_skip) { /* ctest's SKIP; a failure where VKRUN_REQUIRE_ALL=1 (CI) */
        const char *all = getenv("VKRUN_REQUIRE_ALL");
        return all && !strcmp(all, "1") ? 1 : 77;
    }
    return 0;
}
