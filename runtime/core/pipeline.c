/* Compute pipelines from the embedded SPIR-V, created once and cached; the
 * VkPipelineCache is persisted under the user's cache directory. */
#include "core/internal.h"
#include "core/spirv_reflect.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static VkDescriptorType desc_type(char c) {
    return c == 's' ? VK_DESCRIPTOR_TYPE_STORAGE_BUFFER : VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER;
}

static void pipeline_free(vkr_context *ctx, vkr_pipeline *p) {
    if (p->pipeline) vkDestroyPipeline(ctx->device, p->pipeline, NULL);
    if (p->layout) vkDestroyPipelineLayout(ctx->device, p->layout, NULL);
    if (p->set_layout) vkDestroyDescriptorSetLayout(ctx->device, p->set_layout, NULL);
    free(p);
}

vkr_status vkr_pipeline_get(vkr_context *ctx, const vkr_pipeline_desc *d, vkr_pipeline **out) {
    char key[256];
    int k = snprintf(key, sizeof key, "%s|%s|%u", d->shader, d->bindings, d->push_size);
    for (uint32_t i = 0; i < d->spec_count && k < (int)sizeof key; i++)
        k += snprintf(key + k, sizeof key - k, "|%u", d->spec[i]);
    if (k >= (int)sizeof key) return vkr_fail(VKR_ERR_INVALID, "pipeline key too long for shader %s", d->shader);
    for (vkr_pipeline *p = ctx->pipelines; p; p = p->next)
        if (strcmp(p->key, key) == 0) {
            *out = p;
            return VKR_OK;
        }
    const vkr_spirv *m = vkr_shader_find(d->shader);
    if (!m) return vkr_fail(VKR_ERR_NOT_FOUND, "no embedded shader named \"%s\"", d->shader);
    vkr_spirv_info info;
    char err[200];
    if (vkr__spirv_reflect(m->words, m->size_bytes / 4, &info, err, sizeof err))
        return vkr_fail(VKR_ERR_INVALID, "shader %s: %s", d->shader, err);
    /* the description must be the shader's contract (vkr_shader_ids.h has it at compile time) */
    size_t nb = strlen(d->bindings);
    if (nb == 0 || nb >= sizeof((vkr_pipeline *)0)->bindings)
        return vkr_fail(VKR_ERR_INVALID, "shader %s: %zu bindings (1..31 supported)", d->shader, nb);
    if (nb != info.nbind)
        return vkr_fail(VKR_ERR_INVALID, "shader %s declares %u bindings (\"%s\"), the pipeline gives %zu (\"%s\")",
                        d->shader, info.nbind, info.kinds, nb, d->bindings);
    for (size_t i = 0; i < nb; i++) {
        char want = info.kinds[i], got = d->bindings[i];
        if (!strchr("str", got) || (want == 's') != (got == 's') || (want == 't') != (got == 't' || got == 'r'))
            return vkr_fail(VKR_ERR_INVALID, "shader %s: binding %zu is '%c' in the shader (\"%s\"), '%c' in the pipeline",
                            d->shader, i, want, info.kinds, got);
    }
    if (d->push_size != info.push_size)
        return vkr_fail(VKR_ERR_INVALID, "shader %s: push-constant block of %u bytes, the pipeline gives %u", d->shader,
                        info.push_size, d->push_size);
    if (d->push_size % 4 || d->push_size > ctx->info.max_push_constants_size)
        return vkr_fail(VKR_ERR_INVALID, "shader %s: push constant size %u invalid (device max %u)", d->shader,
                        d->push_size, ctx->info.max_push_constants_size);
    if (d->spec_count > info.nspec)
        return vkr_fail(VKR_ERR_INVALID, "shader %s: %u specialization constants given, the shader has %u (SpecId 0..%u)",
                        d->shader, d->spec_count, info.nspec, info.nspec ? info.nspec - 1 : 0);
    /* the workgroup size this pipeline gets: the shader's, with the local_size_*_id constants given */
    uint32_t ls[3];
    for (int i = 0; i < 3; i++) {
        uint32_t id = info.local_size_spec[i];
        ls[i] = id < d->spec_count ? d->spec[id] : info.local_size[i];
    }
    const vkr_device_info *dev = &ctx->info;
    if (ls[0] == 0 || ls[1] == 0 || ls[2] == 0 || ls[0] > dev->max_workgroup_size[0] ||
        ls[1] > dev->max_workgroup_size[1] || ls[2] > dev->max_workgroup_size[2] ||
        (uint64_t)ls[0] * ls[1] * ls[2] > dev->max_workgroup_invocations)
        return vkr_fail(VKR_ERR_INVALID, "shader %s: workgroup %ux%ux%u outside the device's limits (%ux%ux%u, %u invocations)",
                        d->shader, ls[0], ls[1], ls[2], dev->max_workgroup_size[0], dev->max_workgroup_size[1],
                        dev->max_workgroup_size[2], dev->max_workgroup_invocations);
    vkr_pipeline *p = calloc(1, sizeof *p);
    if (!p) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    snprintf(p->key, sizeof p->key, "%s", key);
    snprintf(p->bindings, sizeof p->bindings, "%s", d->bindings);
    p->nbind = (uint32_t)nb;
    p->push_size = d->push_size;
    memcpy(p->local_size, ls, sizeof p->local_size);

    VkDescriptorSetLayoutBinding lb[32];
    for (uint32_t i = 0; i < p->nbind; i++)
        lb[i] = (VkDescriptorSetLayoutBinding){.binding = i,
                                               .descriptorType = desc_type(d->bindings[i]),
                                               .descriptorCount = 1,
                                               .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    VkDescriptorSetLayoutCreateInfo dl = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                          .bindingCount = p->nbind,
                                          .pBindings = lb};
    VkResult r = vkCreateDescriptorSetLayout(ctx->device, &dl, NULL, &p->set_layout);
    VkPushConstantRange pr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = d->push_size};
    if (r == VK_SUCCESS) {
        VkPipelineLayoutCreateInfo pl = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                         .setLayoutCount = 1,
                                         .pSetLayouts = &p->set_layout,
                                         .pushConstantRangeCount = d->push_size ? 1 : 0,
                                         .pPushConstantRanges = &pr};
        r = vkCreatePipelineLayout(ctx->device, &pl, NULL, &p->layout);
    }
    VkShaderModule mod = VK_NULL_HANDLE;
    if (r == VK_SUCCESS) {
        VkShaderModuleCreateInfo sm = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                       .codeSize = m->size_bytes,
                                       .pCode = m->words};
        r = vkCreateShaderModule(ctx->device, &sm, NULL, &mod);
    }
    if (r == VK_SUCCESS) {
        VkSpecializationMapEntry me[32];
        uint32_t ns = d->spec_count < 32 ? d->spec_count : 32;
        for (uint32_t i = 0; i < ns; i++) me[i] = (VkSpecializationMapEntry){.constantID = i, .offset = 4 * i, .size = 4};
        VkSpecializationInfo si = {.mapEntryCount = ns, .pMapEntries = me, .dataSize = 4 * ns, .pData = d->spec};
        p->stats = ctx->capture_stats;
        VkComputePipelineCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
                                          .flags = p->stats ? VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR : 0,
                                          .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                                                    .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                                                    .module = mod,
                                                    .pName = "main",
                                                    .pSpecializationInfo = ns ? &si : NULL},
                                          .layout = p->layout};
        /* with statistics, compiled afresh: a pipeline from the cache may come without them */
        r = vkCreateComputePipelines(ctx->device, p->stats ? VK_NULL_HANDLE : ctx->pcache, 1, &ci, NULL, &p->pipeline);
        ctx->pcache_dirty = 1;
    }
    if (mod) vkDestroyShaderModule(ctx->device, mod, NULL);
    if (r != VK_SUCCESS) {
        pipeline_free(ctx, p);
        return vkr_fail(VKR_ERR_VULKAN, "creating the pipeline for shader %s failed: %s", d->shader, vkr_vk_result_name(r));
    }
    p->next = ctx->pipelines;
    ctx->pipelines = p;
    *out = p;
    return VKR_OK;
}

void vkr_pipeline_local_size(const vkr_pipeline *p, uint32_t out[3]) { memcpy(out, p->local_size, sizeof p->local_size); }

void vkr__pipelines_destroy(vkr_context *ctx) {
    while (ctx->pipelines) {
        vkr_pipeline *p = ctx->pipelines;
        ctx->pipelines = p->next;
        pipeline_free(ctx, p);
    }
    if (ctx->pcache) vkDestroyPipelineCache(ctx->device, ctx->pcache, NULL);
    ctx->pcache = VK_NULL_HANDLE;
}

static int cache_dir(char *buf, size_t n) {
    const char *x = getenv("VKRUN_CACHE_DIR");
    if (x && *x) return snprintf(buf, n, "%s", x) < (int)n;
    x = getenv("XDG_CACHE_HOME");
    if (x && *x) return snprintf(buf, n, "%s/vkrun", x) < (int)n;
    x = getenv("HOME");
    if (x && *x) return snprintf(buf, n, "%s/.cache/vkrun", x) < (int)n;
    return 0;
}

int vkr__mkdirs(const char *path) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) && errno != EEXIST) return -1;
            *p = '/';
        }
    return mkdir(tmp, 0755) && errno != EEXIST ? -1 : 0;
}

void vkr__pipeline_cache_load(vkr_context *ctx) {
    char dir[900];
    void *data = NULL;
    size_t size = 0;
    if (cache_dir(dir, sizeof dir)) {
        snprintf(ctx->pcache_path, sizeof ctx->pcache_path, "%s/pipelines-%04x-%04x-%08x.bin", dir, ctx->info.vendor_id,
                 ctx->info.device_id, ctx->info.driver_version);
        FILE *f = fopen(ctx->pcache_path, "rb");
        if (f) {
            VkPhysicalDeviceProperties props;
            vkGetPhysicalDeviceProperties(ctx->phys, &props);
            if (fseek(f, 0, SEEK_END) == 0) {
                long len = ftell(f);
                if (len >= 32 && len < (256l << 20) && fseek(f, 0, SEEK_SET) == 0 && (data = malloc((size_t)len)) &&
                    fread(data, 1, (size_t)len, f) == (size_t)len) {
                    /* header: length, version, vendor, device, uuid[16] */
                    uint32_t h[4];
                    memcpy(h, data, sizeof h);
                    if (h[0] >= 32 && h[1] == VK_PIPELINE_CACHE_HEADER_VERSION_ONE && h[2] == props.vendorID &&
                        h[3] == props.deviceID && memcmp((char *)data + 16, props.pipelineCacheUUID, 16) == 0)
                        size = (size_t)len;
                }
            }
            fclose(f);
        }
    }
    VkPipelineCacheCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
                                    .initialDataSize = size,
                                    .pInitialData = size ? data : NULL};
    if (vkCreatePipelineCache(ctx->device, &ci, NULL, &ctx->pcache) != VK_SUCCESS) ctx->pcache = VK_NULL_HANDLE;
    free(data);
}

void vkr__pipeline_cache_save(vkr_context *ctx) {
    if (!ctx->pcache || !ctx->pcache_dirty || !ctx->pcache_path[0]) return;
    size_t size = 0;
    if (vkGetPipelineCacheData(ctx->device, ctx->pcache, &size, NULL) != VK_SUCCESS || size == 0) return;
    void *data = malloc(size);
    if (!data) return;
    if (vkGetPipelineCacheData(ctx->device, ctx->pcache, &size, data) == VK_SUCCESS) {
        char dir[1024], tmp[1100];
        snprintf(dir, sizeof dir, "%s", ctx->pcache_path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld", ctx->pcache_path, (long)getpid());
        FILE *f = NULL;
        if (vkr__mkdirs(dir) == 0 && (f = fopen(tmp, "wb"))) { /* best effort: a cache, never an error */
            int ok = fwrite(data, 1, size, f) == size;
            ok = (fclose(f) == 0) && ok;
            if (!ok || rename(tmp, ctx->pcache_path) != 0) remove(tmp);
        }
    }
    free(data);
}
