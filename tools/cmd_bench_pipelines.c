/* vkrun bench MODEL --pipelines: the compile statistics of every pipeline a training step of
 * the model creates (cmd_bench_model.c runs the step; VK_KHR_pipeline_executable_properties). */
#include "cli.h"

#include <cJSON.h>
#include <stdio.h>
#include <string.h>

#define MAX_STATS 64

/* The shader's name: the key up to its first '|'. */
static void shader_of(const char *key, char *out, size_t n) {
    size_t l = strcspn(key, "|");
    snprintf(out, n, "%.*s", (int)(l < n ? l : n - 1), key);
}

static int is_key(const char *name) {
    static const char *const keys[] = {"VGPRs", "SGPRs", "Spilled VGPRs", "Spilled SGPRs", "LDS size",
                                       "Scratch size", "Subgroups per SIMD", "Subgroup size"};
    const char *n = strncmp(name, "exe ", 4) ? name : name + 7;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!strcmp(n, keys[i])) return 1;
    return 0;
}

int bench_pipelines_report(vkr_context *ctx, const char *model, int captured, int json) {
    size_t np = vkr_pipeline_count(ctx);
    const vkr_device_info *dev = vkr_context_device(ctx);
    cJSON *J = json ? cJSON_CreateObject() : NULL, *arr = NULL;
    if (J) {
        cJSON_AddStringToObject(J, "model", model);
        cJSON_AddStringToObject(J, "device", dev->name);
        cJSON_AddStringToObject(J, "driver", dev->driver_info);
        cJSON_AddBoolToObject(J, "statistics_reported", captured);
        arr = cJSON_AddArrayToObject(J, "pipelines");
    } else {
        printf("Pipelines of one training step of %s on \"%s\" (%s): %zu\n", model, dev->name, dev->driver_info, np);
        if (!captured)
            printf("the driver reports no compile statistics (no VK_KHR_pipeline_executable_properties): local sizes only\n");
    }
    int rc = 0;
    for (size_t i = 0; i < np; i++) {
        const vkr_pipeline *p = vkr_pipeline_at(ctx, i);
        uint32_t ls[3];
        vkr_pipeline_local_size(p, ls);
        vkr_pipeline_stat st[MAX_STATS];
        size_t ns = 0;
        if (captured && vkr_pipeline_statistics(ctx, p, st, MAX_STATS, &ns)) {
            fprintf(stderr, "vkrun bench: %s\n", vkr_last_error());
            rc = 1;
            ns = 0;
        }
        if (ns > MAX_STATS) ns = MAX_STATS;
        char shader[64];
        shader_of(vkr_pipeline_key(p), shader, sizeof shader);
        if (J) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "shader", shader);
            cJSON_AddStringToObject(o, "key", vkr_pipeline_key(p));
            cJSON *l = cJSON_AddArrayToObject(o, "local_size");
            for (int d = 0; d < 3; d++) cJSON_AddItemToArray(l, cJSON_CreateNumber(ls[d]));
            cJSON *so = captured ? cJSON_AddObjectToObject(o, "statistics") : NULL;
            for (size_t k = 0; so && k < ns; k++) cJSON_AddNumberToObject(so, st[k].name, st[k].value);
            cJSON_AddItemToArray(arr, o);
            continue;
        }
        printf("%3zu %-44s %4ux%ux%u", i, vkr_pipeline_key(p), ls[0], ls[1], ls[2]);
        int key = 0; /* the table shows these where the driver names them so (RADV); else everything */
        for (size_t k = 0; k < ns; k++) key |= is_key(st[k].name);
        for (size_t k = 0, o = 0; k < ns; k++)
            if (!key || is_key(st[k].name)) printf("%s %s %g", o++ ? "," : "  ", st[k].name, st[k].value);
        printf("\n");
    }
    if (J) {
        char *txt = cJSON_Print(J);
        if (txt) puts(txt);
        cJSON_free(txt);
        cJSON_Delete(J);
    }
    return rc;
}
