/* vkrun selftest: every op on the chosen device against its C reference. */
#include "cli.h"
#include "vkrun_selftest.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char usage_selftest[] =
    "usage: vkrun selftest [--device D] [--op NAME]... [--list] [--json]\n\n"
    "Runs each op's GPU kernels (every kernel variant) on random data over many shapes\n"
    "and compares them with the plain-C double-precision reference; checks each\n"
    "reference backward against central finite differences.  One line per op and\n"
    "direction: shapes tried, max abs and relative error, tolerance, PASS/FAIL.\n"
    "Exit status 0 only if every check passes (and, with VKRUN_VALIDATION=1, the\n"
    "validation layer reported nothing); 77 if every check selected was skipped\n"
    "(SKIP lines: the device lacks a feature, e.g. shaderFloat16 for gemm_f16).\n\n"
    "  --device D   device index or name substring (default: VKRUN_DEVICE, else best)\n"
    "  --op NAME    check only this op (repeatable)\n"
    "  --list       print the op names and exit\n"
    "  --json       print the results as JSON\n";

int cmd_selftest(int argc, char **argv) {
    const char *device = NULL;
    const char *only[64];
    int nonly = 0, json = 0, list = 0;
    size_t nops;
    const vkr_selftest_op *ops = vkr_selftest_ops(&nops);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--device") && i + 1 < argc) device = argv[++i];
        else if (!strcmp(argv[i], "--op") && i + 1 < argc && nonly < 64) only[nonly++] = argv[++i];
        else if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--list")) list = 1;
        else {
            return cli_unknown_option("selftest", argv[i], usage_selftest);
        }
    }
    if (list) {
        for (size_t i = 0; i < nops; i++) puts(ops[i].name);
        return 0;
    }
    for (int j = 0; j < nonly; j++) {
        size_t i = 0;
        while (i < nops && strcmp(ops[i].name, only[j])) i++;
        if (i == nops) {
            fprintf(stderr, "vkrun selftest: unknown op \"%s\" (see --list)\n", only[j]);
            return 2;
        }
    }
    vkr_context *ctx;
    vkr_status s = cli_context(device, &ctx);
    if (s) return cli_error("selftest", s);
    if (!json) printf("device: %s (%s)\n", vkr_context_device(ctx)->name, vkr_context_device(ctx)->type_name);
    vkr_selftest *st = vkr_selftest_new();
    int failed = !st;
    for (size_t i = 0; st && i < nops; i++) {
        int run = nonly == 0;
        for (int j = 0; j < nonly; j++) run |= !strcmp(ops[i].name, only[j]);
        if (!run) continue;
        size_t before = vkr_selftest_count(st);
        s = ops[i].fn(ctx, st);
        if (s) {
            fprintf(stderr, "vkrun selftest: %s: %s (%s)\n", ops[i].name, cli_esc_msg(vkr_last_error()), vkr_status_name(s));
            failed = 1;
        }
        if (!json)
            for (size_t k = before; k < vkr_selftest_count(st); k++) {
                const vkr_selftest_result *r = vkr_selftest_get(st, k);
                if (r->skipped) {
                    printf("SKIP %-16s %-30s %s\n", r->op, r->direction, r->shapes);
                    fflush(stdout);
                    continue;
                }
                printf("%-4s %-16s %-30s max_abs %.3e  max_rel %.3e  (tol %.1e, %d case%s)\n", r->pass ? "PASS" : "FAIL",
                       r->op, r->direction, r->max_abs, r->max_rel, r->tol, r->checks, r->checks == 1 ? "" : "s");
                printf("       shapes: %s\n", r->shapes);
                fflush(stdout);
            }
    }
    int nfail = 0;
    for (size_t k = 0; st && k < vkr_selftest_count(st); k++) nfail += !vkr_selftest_get(st, k)->pass;
    int vfail = cli_check_validation(ctx);
    if (json && st) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "device", vkr_context_device(ctx)->name);
        cJSON *arr = cJSON_AddArrayToObject(root, "results");
        for (size_t k = 0; k < vkr_selftest_count(st); k++) {
            const vkr_selftest_result *r = vkr_selftest_get(st, k);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "op", r->op);
            cJSON_AddStringToObject(o, "direction", r->direction);
            cJSON_AddStringToObject(o, "shapes", r->shapes);
            cJSON_AddNumberToObject(o, "cases", r->checks);
            cJSON_AddNumberToObject(o, "max_abs", r->max_abs);
            cJSON_AddNumberToObject(o, "max_rel", r->max_rel);
            cJSON_AddNumberToObject(o, "tol", r->tol);
            cJSON_AddBoolToObject(o, "pass", r->pass);
            cJSON_AddBoolToObject(o, "skipped", r->skipped);
            cJSON_AddItemToArray(arr, o);
        }
        cJSON_AddNumberToObject(root, "validation_errors", vkr_validation_errors(ctx));
        cJSON_AddNumberToObject(root, "validation_warnings", vkr_validation_warnings(ctx));
        cJSON_AddBoolToObject(root, "pass", !failed && !nfail && !vfail);
        char *txt = cJSON_Print(root);
        if (txt) puts(txt);
        free(txt);
        cJSON_Delete(root);
    } else if (st) {
        printf("%zu passed, %d failed\n", vkr_selftest_count(st) - (size_t)nfail, nfail);
    }
    int all_skipped = st && vkr_selftest_all_skipped(st);
    vkr_selftest_free(st);
    vkr_context_destroy(ctx);
    if (failed || nfail || vfail) return 1;
    return all_skipped ? 77 : 0; /* 77: nothing could run on this device (ctest SKIP_RETURN_CODE) */
}
