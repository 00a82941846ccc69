/* The context's pipelines as a list, and their compile statistics
 * (VK_KHR_pipeline_executable_properties; see vkrun.h). */
#include "core/internal.h"

#include <stdio.h>
#include <string.h>

size_t vkr_pipeline_count(const vkr_context *ctx) {
    size_t n = 0;
    for (const vkr_pipeline *p = ctx->pipelines; p; p = p->next) n++;
    return n;
}

const vkr_pipeline *vkr_pipeline_at(const vkr_context *ctx, size_t i) {
    size_t n = vkr_pipeline_count(ctx); /* the list is newest first */
    if (i >= n) return NULL;
    const vkr_pipeline *p = ctx->pipelines;
    for (size_t k = n - 1; k > i; k--) p = p->next;
    return p;
}

const char *vkr_pipeline_key(const vkr_pipeline *p) { return p->key; }

vkr_status vkr_context_capture_pipeline_stats(vkr_context *ctx) {
    if (!ctx->has_exec_props)
        return vkr_fail(VKR_ERR_UNSUPPORTED, "device \"%s\" reports no compile statistics (no %s)", ctx->info.name,
                        VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME);
    ctx->capture_stats = 1;
    return VKR_OK;
}

static double stat_value(const VkPipelineExecutableStatisticKHR *s) {
    switch (s->format) {
    case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_BOOL32_KHR: return s->value.b32;
    case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_INT64_KHR: return (double)s->value.i64;
    case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_UINT64_KHR: return (double)s->value.u64;
    default: return s->value.f64;
    }
}

vkr_status vkr_pipeline_statistics(vkr_context *ctx, const vkr_pipeline *p, vkr_pipeline_stat *out, size_t max,
                                   size_t *n) {
    *n = 0;
    if (!p->stats) return vkr_fail(VKR_ERR_UNSUPPORTED, "pipeline %s was created without statistics", p->key);
    PFN_vkGetPipelineExecutablePropertiesKHR props =
        (PFN_vkGetPipelineExecutablePropertiesKHR)vkGetDeviceProcAddr(ctx->device, "vkGetPipelineExecutablePropertiesKHR");
    PFN_vkGetPipelineExecutableStatisticsKHR stats =
        (PFN_vkGetPipelineExecutableStatisticsKHR)vkGetDeviceProcAddr(ctx->device, "vkGetPipelineExecutableStatisticsKHR");
    if (!props || !stats) return vkr_fail(VKR_ERR_UNSUPPORTED, "the driver gives no vkGetPipelineExecutable*KHR");
    VkPipelineExecutablePropertiesKHR ep[4];
    for (uint32_t e = 0; e < 4; e++) ep[e] = (VkPipelineExecutablePropertiesKHR){.sType = VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_PROPERTIES_KHR};
    uint32_t ne = 4;
    VkPipelineInfoKHR pi = {.sType = VK_STRUCTURE_TYPE_PIPELINE_INFO_KHR, .pipeline = p->pipeline};
    VkResult r = props(ctx->device, &pi, &ne, ep);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE)
        return vkr_fail(VKR_ERR_VULKAN, "vkGetPipelineExecutablePropertiesKHR (%s): %s", p->key, vkr_vk_result_name(r));
    for (uint32_t e = 0; e < ne; e++) {
        char pre[16] = "";
        if (ne > 1) snprintf(pre, sizeof pre, "exe %u: ", e % 10u);
        VkPipelineExecutableStatisticKHR st[48];
        for (int k = 0; k < 48; k++) st[k] = (VkPipelineExecutableStatisticKHR){.sType = VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_STATISTIC_KHR};
        uint32_t ns = 48;
        VkPipelineExecutableInfoKHR xi = {.sType = VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_INFO_KHR,
                                          .pipeline = p->pipeline, .executableIndex = e};
        r = stats(ctx->device, &xi, &ns, st);
        if (r != VK_SUCCESS && r != VK_INCOMPLETE)
            return vkr_fail(VKR_ERR_VULKAN, "vkGetPipelineExecutableStatisticsKHR (%s): %s", p->key, vkr_vk_result_name(r));
        for (uint32_t k = 0; k <= ns; k++, (*n)++) {
            if (*n >= max) continue;
            if (k == ns) { /* the executable's subgroup size, from its properties */
                snprintf(out[*n].name, sizeof out[*n].name, "%sSubgroup size", pre);
                out[*n].value = ep[e].subgroupSize;
            } else {
                snprintf(out[*n].name, sizeof out[*n].name, "%s%.40s", pre, st[k].name);
                out[*n].value = stat_value(&st[k]);
            }
        }
    }
    return VKR_OK;
}
