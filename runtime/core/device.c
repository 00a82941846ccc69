/* Instance, device enumeration and choice, capability probe, context. */
#include "core/internal.h"

#include <ctype.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *k_validation_layer = "VK_LAYER_KHRONOS_validation";

static VKAPI_ATTR VkBool32 VKAPI_CALL debug_cb(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
                                               VkDebugUtilsMessageTypeFlagsEXT type,
                                               const VkDebugUtilsMessengerCallbackDataEXT *data, void *user) {
    vkr_context *ctx = user;
    (void)type;
    int is_err = (sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) != 0;
    int is_warn = (sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) != 0;
    if (!is_err && !is_warn) return VK_FALSE;
    if (ctx) {
        if (is_err) __atomic_add_fetch(&ctx->val_errors, 1, __ATOMIC_RELAXED);
        else __atomic_add_fetch(&ctx->val_warnings, 1, __ATOMIC_RELAXED);
    }
    if (!ctx || !ctx->quiet_validation)
        vkr_log(is_err ? VKR_LOG_ERROR : VKR_LOG_WARNING, "validation layer: %s",
                data && data->pMessage ? data->pMessage : "(no message)");
    return VK_FALSE;
}

static int layer_available(const char *name) {
    uint32_t n = 0;
    if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || n == 0) return 0;
    VkLayerProperties *props = calloc(n, sizeof *props);
    if (!props) return 0;
    int found = 0;
    if (vkEnumerateInstanceLayerProperties(&n, props) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++)
            if (strcmp(props[i].layerName, name) == 0) found = 1;
    free(props);
    return found;
}

static int instance_ext_available(const char *name) {
    uint32_t n = 0;
    if (vkEnumerateInstanceExtensionProperties(NULL, &n, NULL) != VK_SUCCESS) return 0;
    VkExtensionProperties *props = calloc(n ? n : 1, sizeof *props);
    if (!props) return 0;
    int found = 0;
    if (vkEnumerateInstanceExtensionProperties(NULL, &n, props) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++)
            if (strcmp(props[i].extensionName, name) == 0) found = 1;
    free(props);
    return found;
}

vkr_status vkr__create_instance(int validation, vkr_context *ctx, VkInstance *out) {
    uint32_t api = VK_API_VERSION_1_0;
    if (vkEnumerateInstanceVersion(&api) != VK_SUCCESS || api < VK_API_VERSION_1_1)
        return vkr_fail(VKR_ERR_UNSUPPORTED, "the Vulkan loader supports only API %u.%u; vkrun needs 1.1",
                        VK_API_VERSION_MAJOR(api), VK_API_VERSION_MINOR(api));
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                             .pApplicationName = "vkrun",
                             .pEngineName = "vkrun",
                             .apiVersion = api >= VK_API_VERSION_1_2 ? VK_API_VERSION_1_2 : VK_API_VERSION_1_1};
    const char *layers[1];
    const char *exts[2];
    uint32_t nl = 0, ne = 0;
    if (validation) {
        if (!layer_available(k_validation_layer))
            return vkr_fail(VKR_ERR_UNSUPPORTED,
                            "validation requested but %s is not installed (Debian: apt-get install vulkan-validationlayers)",
                            k_validation_layer);
        if (!instance_ext_available(VK_EXT_DEBUG_UTILS_EXTENSION_NAME))
            return vkr_fail(VKR_ERR_UNSUPPORTED, "validation requested but %s is missing",
                            VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
        layers[nl++] = k_validation_layer;
        exts[ne++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
    }
    VkDebugUtilsMessengerCreateInfoEXT dbg = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = debug_cb,
        .pUserData = ctx};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                               .pNext = validation ? &dbg : NULL,
                               .pApplicationInfo = &app,
                               .enabledLayerCount = nl,
                               .ppEnabledLayerNames = layers,
                               .enabledExtensionCount = ne,
                               .ppEnabledExtensionNames = exts};
    VkResult r = vkCreateInstance(&ci, NULL, out);
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER)
        return vkr_fail(VKR_ERR_NO_DEVICE,
                        "no Vulkan driver found (VK_ERROR_INCOMPATIBLE_DRIVER); without a GPU install Mesa's lavapipe: "
                        "apt-get install mesa-vulkan-drivers");
    VK_CHECK_RET(r, "vkCreateInstance");
    if (validation && ctx) {
        PFN_vkCreateDebugUtilsMessengerEXT create =
            (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(*out, "vkCreateDebugUtilsMessengerEXT");
        ctx->destroy_messenger =
            (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(*out, "vkDestroyDebugUtilsMessengerEXT");
        if (!create || !ctx->destroy_messenger) {
            vkDestroyInstance(*out, NULL);
            return vkr_fail(VKR_ERR_UNSUPPORTED, "vkCreateDebugUtilsMessengerEXT is unavailable");
        }
        r = create(*out, &dbg, NULL, &ctx->messenger);
        if (r != VK_SUCCESS) {
            vkDestroyInstance(*out, NULL);
            return vkr_fail(VKR_ERR_VULKAN, "vkCreateDebugUtilsMessengerEXT failed: %s", vkr_vk_result_name(r));
        }
    }
    return VKR_OK;
}

static const char *type_name(vkr_device_type t) {
    switch (t) {
    case VKR_DEVICE_INTEGRATED: return "integrated";
    case VKR_DEVICE_DISCRETE: return "discrete";
    case VKR_DEVICE_VIRTUAL: return "virtual";
    case VKR_DEVICE_CPU: return "cpu";
    default: return "other";
    }
}

static int compute_family(VkPhysicalDevice pd, uint32_t *family, uint32_t *ts_bits) {
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, NULL);
    VkQueueFamilyProperties *q = calloc(n ? n : 1, sizeof *q);
    if (!q) return 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, q);
    int found = 0;
    for (uint32_t i = 0; i < n && !found; i++)
        if (q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) {
            *family = i;
            *ts_bits = q[i].timestampValidBits;
            found = 1;
        }
    free(q);
    return found;
}

vkr_status vkr__fill_device_info(VkInstance inst, VkPhysicalDevice pd, int index, vkr_device_info *info) {
    (void)inst;
    memset(info, 0, sizeof *info);
    VkPhysicalDeviceProperties base;
    vkGetPhysicalDeviceProperties(pd, &base);
    VkPhysicalDeviceSubgroupProperties sub = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceDriverProperties drv = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sub};
    int v12 = base.apiVersion >= VK_API_VERSION_1_2;
    if (v12) sub.pNext = &drv;
    vkGetPhysicalDeviceProperties2(pd, &p2);
    const VkPhysicalDeviceLimits *L = &p2.properties.limits;

    VkPhysicalDevice16BitStorageFeatures s16 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
    VkPhysicalDeviceShaderFloat16Int8Features f16 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &s16};
    if (v12) s16.pNext = &f16;
    vkGetPhysicalDeviceFeatures2(pd, &f2);

    info->index = index;
    snprintf(info->name, sizeof info->name, "%s", p2.properties.deviceName);
    switch (p2.properties.deviceType) {
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: info->type = VKR_DEVICE_INTEGRATED; break;
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: info->type = VKR_DEVICE_DISCRETE; break;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: info->type = VKR_DEVICE_VIRTUAL; break;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: info->type = VKR_DEVICE_CPU; break;
    default: info->type = VKR_DEVICE_OTHER;
    }
    info->type_name = type_name(info->type);
    info->vendor_id = p2.properties.vendorID;
    info->device_id = p2.properties.deviceID;
    info->api_version = p2.properties.apiVersion;
    info->driver_version = p2.properties.driverVersion;
    if (v12) {
        snprintf(info->driver_name, sizeof info->driver_name, "%s", drv.driverName);
        snprintf(info->driver_info, sizeof info->driver_info, "%s", drv.driverInfo);
    }
    info->max_storage_buffer_range = L->maxStorageBufferRange;
    info->max_texel_buffer_elements = L->maxTexelBufferElements;
    info->min_storage_buffer_offset_alignment = L->minStorageBufferOffsetAlignment;
    info->min_texel_buffer_offset_alignment = L->minTexelBufferOffsetAlignment;
    info->max_compute_shared_memory_size = L->maxComputeSharedMemorySize;
    for (int i = 0; i < 3; i++) {
        info->max_workgroup_size[i] = L->maxComputeWorkGroupSize[i];
        info->max_workgroup_count[i] = L->maxComputeWorkGroupCount[i];
    }
    info->max_workgroup_invocations = L->maxComputeWorkGroupInvocations;
    info->max_push_constants_size = L->maxPushConstantsSize;
    info->subgroup_size = sub.subgroupSize;
    info->fp16_arithmetic = v12 ? (int)f16.shaderFloat16 : 0;
    info->storage_16bit = (int)s16.storageBuffer16BitAccess;
    info->timestamp_period_ns = L->timestampPeriod;

    /* maxMemoryAllocationSize lives in VkPhysicalDeviceMaintenance3Properties */
    VkPhysicalDeviceMaintenance3Properties m3 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
    VkPhysicalDeviceProperties2 p3 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &m3};
    vkGetPhysicalDeviceProperties2(pd, &p3);
    info->max_memory_allocation_size = m3.maxMemoryAllocationSize;

    uint32_t fam = 0, tsbits = 0;
    if (compute_family(pd, &fam, &tsbits))
        info->timestamps = tsbits > 0 && (L->timestampComputeAndGraphics || tsbits > 0);

    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(pd, &mp);
    info->heap_count = mp.memoryHeapCount < VKR_MAX_HEAPS ? mp.memoryHeapCount : VKR_MAX_HEAPS;
    for (uint32_t i = 0; i < info->heap_count; i++) {
        info->heap_size[i] = mp.memoryHeaps[i].size;
        info->heap_device_local[i] = (mp.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) != 0;
    }
    info->memtype_count = mp.memoryTypeCount < VKR_MAX_MEMTYPES ? mp.memoryTypeCount : VKR_MAX_MEMTYPES;
    for (uint32_t i = 0; i < info->memtype_count; i++) {
        info->memtype_flags[i] = mp.memoryTypes[i].propertyFlags;
        info->memtype_heap[i] = mp.memoryTypes[i].heapIndex;
    }
    return VKR_OK;
}

static vkr_status enumerate_on(VkInstance inst, VkPhysicalDevice **pds, vkr_device_info **infos, int *count) {
    uint32_t n = 0;
    VK_CHECK_RET(vkEnumeratePhysicalDevices(inst, &n, NULL), "vkEnumeratePhysicalDevices");
    if (n == 0)
        return vkr_fail(VKR_ERR_NO_DEVICE, "no Vulkan device found; without a GPU install Mesa's lavapipe: "
                                           "apt-get install mesa-vulkan-drivers");
    VkPhysicalDevice *p = calloc(n, sizeof *p);
    vkr_device_info *in = calloc(n, sizeof *in);
    if (!p || !in) {
        free(p);
        free(in);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory enumerating devices");
    }
    VkResult r = vkEnumeratePhysicalDevices(inst, &n, p);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        free(p);
        free(in);
        return vkr_fail(VKR_ERR_VULKAN, "vkEnumeratePhysicalDevices failed: %s", vkr_vk_result_name(r));
    }
    for (uint32_t i = 0; i < n; i++) vkr__fill_device_info(inst, p[i], (int)i, &in[i]);
    if (pds) *pds = p;
    else free(p);
    *infos = in;
    *count = (int)n;
    return VKR_OK;
}

vkr_status vkr_enumerate_devices(vkr_device_info **infos, int *count) {
    VkInstance inst;
    vkr_status s = vkr__create_instance(0, NULL, &inst);
    if (s) return s;
    s = enumerate_on(inst, NULL, infos, count);
    vkDestroyInstance(inst, NULL);
    return s;
}

vkr_status vkr_loader_version(uint32_t *api_version) {
    uint32_t v = VK_API_VERSION_1_0; /* a 1.0 loader has no vkEnumerateInstanceVersion */
    if (vkEnumerateInstanceVersion(&v) != VK_SUCCESS) return vkr_fail(VKR_ERR_VULKAN, "vkEnumerateInstanceVersion failed");
    *api_version = v;
    return VKR_OK;
}

static int type_rank(vkr_device_type t) {
    switch (t) {
    case VKR_DEVICE_DISCRETE: return 4;
    case VKR_DEVICE_INTEGRATED: return 3;
    case VKR_DEVICE_VIRTUAL: return 2;
    case VKR_DEVICE_CPU: return 1;
    default: return 0;
    }
}

static int icontains(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (const char *h = hay; *h; h++) {
        size_t i = 0;
        while (i < n && h[i] && tolower((unsigned char)h[i]) == tolower((unsigned char)needle[i])) i++;
        if (i == n) return 1;
    }
    return n == 0;
}

vkr_status vkr_select_device(const vkr_device_info *infos, int count, const char *sel, int *chosen) {
    if (count <= 0) return vkr_fail(VKR_ERR_NO_DEVICE, "no Vulkan device found");
    if (!sel || !*sel) sel = getenv("VKRUN_DEVICE");
    if (sel && *sel) {
        char *end;
        long idx = strtol(sel, &end, 10);
        if (*end == '\0') {
            if (idx < 0 || idx >= count)
                return vkr_fail(VKR_ERR_NO_DEVICE, "device index %ld out of range (found %d device%s)", idx, count,
                                count == 1 ? "" : "s");
            *chosen = (int)idx;
            return VKR_OK;
        }
        for (int i = 0; i < count; i++)
            if (icontains(infos[i].name, sel)) {
                *chosen = i;
                return VKR_OK;
            }
        return vkr_fail(VKR_ERR_NO_DEVICE, "no device name contains \"%s\" (run `vkrun devices` to list them)", sel);
    }
    int best = 0;
    for (int i = 1; i < count; i++)
        if (type_rank(infos[i].type) > type_rank(infos[best].type)) best = i;
    *chosen = best;
    return VKR_OK;
}

static int device_has_extension(VkPhysicalDevice pd, const char *name) {
    uint32_t n = 0;
    if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL) != VK_SUCCESS || !n) return 0;
    VkExtensionProperties *props = calloc(n, sizeof *props);
    int found = 0;
    if (props && vkEnumerateDeviceExtensionProperties(pd, NULL, &n, props) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++)
            if (strcmp(props[i].extensionName, name) == 0) found = 1;
    free(props);
    return found;
}

vkr_status vkr_context_create(const vkr_context_opts *opts, vkr_context **out) {
    vkr_context_opts def = {0};
    if (!opts) opts = &def;
    *out = NULL;
    vkr_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    int val = opts->validation;
    if (val < 0) {
        const char *e = getenv("VKRUN_VALIDATION");
        val = e && *e && strcmp(e, "0") != 0;
    }
    ctx->validation = val;
    ctx->quiet_validation = opts->quiet_validation;
    vkr_status s = vkr__create_instance(val, ctx, &ctx->instance);
    if (s) {
        free(ctx);
        return s;
    }
    VkPhysicalDevice *pds = NULL;
    vkr_device_info *infos = NULL;
    int count = 0, chosen = 0;
    s = enumerate_on(ctx->instance, &pds, &infos, &count);
    if (!s) s = vkr_select_device(infos, count, opts->device, &chosen);
    if (s) {
        free(pds);
        free(infos);
        vkr_context_destroy(ctx);
        return s;
    }
    ctx->phys = pds[chosen];
    ctx->info = infos[chosen];
    free(pds);
    free(infos);
    if (ctx->info.api_version < VK_API_VERSION_1_1) {
        s = vkr_fail(VKR_ERR_UNSUPPORTED, "device \"%s\" supports only Vulkan %u.%u; vkrun needs 1.1", ctx->info.name,
                     VK_API_VERSION_MAJOR(ctx->info.api_version), VK_API_VERSION_MINOR(ctx->info.api_version));
        vkr_context_destroy(ctx);
        return s;
    }
    uint32_t tsbits = 0;
    if (!compute_family(ctx->phys, &ctx->queue_family, &tsbits)) {
        s = vkr_fail(VKR_ERR_UNSUPPORTED, "device \"%s\" has no compute queue", ctx->info.name);
        vkr_context_destroy(ctx);
        return s;
    }
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                   .queueFamilyIndex = ctx->queue_family,
                                   .queueCount = 1,
                                   .pQueuePriorities = &prio};
    VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .queueCreateInfoCount = 1, .pQueueCreateInfos = &qci};
    /* shaderFloat16 (Vulkan 1.2) for the fp16 GEMM variants (--precision fp16) */
    VkPhysicalDeviceShaderFloat16Int8Features f16 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
                                                     .shaderFloat16 = VK_TRUE};
    uint32_t iv = 0; /* the struct is Vulkan 1.2's: the instance (created at 1.2 where the loader has it) must be too */
    if (vkEnumerateInstanceVersion(&iv) != VK_SUCCESS || iv < VK_API_VERSION_1_2) ctx->info.fp16_arithmetic = 0;
    if (ctx->info.fp16_arithmetic) dci.pNext = &f16;
    const char *exts[2];
    ctx->has_budget = device_has_extension(ctx->phys, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
    if (ctx->has_budget) exts[dci.enabledExtensionCount++] = VK_EXT_MEMORY_BUDGET_EXTENSION_NAME;
    /* compile statistics (vkrun bench MODEL --pipelines), where the driver gives them */
    VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR pe = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR,
        .pipelineExecutableInfo = VK_TRUE};
    ctx->has_exec_props = device_has_extension(ctx->phys, VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME);
    if (ctx->has_exec_props) {
        exts[dci.enabledExtensionCount++] = VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME;
        pe.pNext = (void *)dci.pNext;
        dci.pNext = &pe;
    }
    dci.ppEnabledExtensionNames = exts;
    const char *lim = getenv("VKRUN_DEVICE_MEMORY_LIMIT");
    if (lim && *lim) { /* MiB: a whole number > 0 (no suffix: "1K" is not 1 MiB, "lots" not unlimited) */
        char *end;
        errno = 0;
        unsigned long long mib = strtoull(lim, &end, 10);
        if (*lim < '0' || *lim > '9' || *end || errno || mib == 0 || mib > (1ull << 40)) {
            s = vkr_fail(VKR_ERR_INVALID, "VKRUN_DEVICE_MEMORY_LIMIT=%s: wants the device memory limit in MiB, a whole "
                                          "number from 1 to 2^40 (e.g. 512), or unset for no limit", lim);
            vkr_context_destroy(ctx);
            return s;
        }
        ctx->mem_limit = mib << 20;
    }
    VkResult r = vkCreateDevice(ctx->phys, &dci, NULL, &ctx->device);
    if (r != VK_SUCCESS) {
        s = vkr_fail(VKR_ERR_VULKAN, "vkCreateDevice on \"%s\" failed: %s", ctx->info.name, vkr_vk_result_name(r));
        vkr_context_destroy(ctx);
        return s;
    }
    vkGetDeviceQueue(ctx->device, ctx->queue_family, 0, &ctx->queue);
    vkGetPhysicalDeviceMemoryProperties(ctx->phys, &ctx->memprops);
    VkCommandPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                   .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                   .queueFamilyIndex = ctx->queue_family};
    r = vkCreateCommandPool(ctx->device, &pci, NULL, &ctx->pool);
    if (r != VK_SUCCESS) {
        s = vkr_fail(VKR_ERR_VULKAN, "vkCreateCommandPool failed: %s", vkr_vk_result_name(r));
        vkr_context_destroy(ctx);
        return s;
    }
    /* blocks of at most 256 MiB, within the device's allocation limit */
    uint64_t bs = 256ull << 20;
    if (ctx->info.max_memory_allocation_size && ctx->info.max_memory_allocation_size < bs)
        bs = ctx->info.max_memory_allocation_size;
    ctx->block_size = bs;
    if (!opts->no_pipeline_cache) vkr__pipeline_cache_load(ctx);
    ctx->tuned_tile = opts->no_pipeline_cache ? 0 : -1; /* -1: read by the first GEMM (ops/gemm_conv.c) */
    /* Test hook (ctest cli_validation_fails): one invalid call, so that a test can check that
     * every command turns a validation message into a failure.  VkBufferCreateInfo with usage 0
     * violates VUID-VkBufferCreateInfo-usage-requiredbitmask. */
    const char *provoke = getenv("VKRUN_TEST_PROVOKE_VALIDATION");
    if (val && provoke && !strcmp(provoke, "1")) {
        VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = 64, .usage = 0,
                                 .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
        VkBuffer b = VK_NULL_HANDLE;
        if (vkCreateBuffer(ctx->device, &bi, NULL, &b) == VK_SUCCESS) vkDestroyBuffer(ctx->device, b, NULL);
    }
    *out = ctx;
    return VKR_OK;
}

void vkr_context_destroy(vkr_context *ctx) {
    if (!ctx) return;
    if (ctx->device) {
        if (ctx->submitted) vkDeviceWaitIdle(ctx->device);
        vkr__pipeline_cache_save(ctx);
        vkr__pipelines_destroy(ctx);
        vkr__memory_destroy(ctx);
        if (ctx->pool) vkDestroyCommandPool(ctx->device, ctx->pool, NULL);
        vkDestroyDevice(ctx->device, NULL);
    }
    if (ctx->messenger && ctx->destroy_messenger) ctx->destroy_messenger(ctx->instance, ctx->messenger, NULL);
    if (ctx->instance) vkDestroyInstance(ctx->instance, NULL);
    free(ctx);
}

const vkr_device_info *vkr_context_device(const vkr_context *ctx) { return &ctx->info; }
uint32_t vkr_validation_errors(const vkr_context *ctx) { return __atomic_load_n(&ctx->val_errors, __ATOMIC_RELAXED); }
uint32_t vkr_validation_warnings(const vkr_context *ctx) { return __atomic_load_n(&ctx->val_warnings, __ATOMIC_RELAXED); }
int vkr_validation_enabled(const vkr_context *ctx) { return ctx->validation; }

void vkr_device_memory_budget(const vkr_context *ctx, vkr_memory_budget *out) {
    memset(out, 0, sizeof *out);
    int heap = -1;
    for (uint32_t i = 0; i < ctx->memprops.memoryHeapCount; i++)
        if ((ctx->memprops.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
            (heap < 0 || ctx->memprops.memoryHeaps[i].size > ctx->memprops.memoryHeaps[heap].size))
            heap = (int)i;
    if (heap < 0) return;
    out->heap = ctx->memprops.memoryHeaps[heap].size;
    out->budget = out->heap;
    out->usage = ctx->bytes_allocated;
    if (ctx->has_budget) {
        VkPhysicalDeviceMemoryBudgetPropertiesEXT b = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
        VkPhysicalDeviceMemoryProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2, .pNext = &b};
        vkGetPhysicalDeviceMemoryProperties2(ctx->phys, &p2);
        if (b.heapBudget[heap]) {
            out->budget = b.heapBudget[heap] < out->heap ? b.heapBudget[heap] : out->heap;
            out->usage = b.heapUsage[heap];
            out->from_ext = 1;
        }
    }
    const char *cap = getenv("VKRUN_MEMORY_BUDGET"); /* MiB: a smaller budget than the device's */
    if (cap && *cap && strtoull(cap, NULL, 10)) {
        uint64_t c = strtoull(cap, NULL, 10) << 20;
        if (c < out->budget) out->budget = c, out->from_env = 1;
    }
    out->available = out->budget > out->usage ? out->budget - out->usage : 0;
}

void vkr_context_set_memory_limit(vkr_context *ctx, uint64_t bytes) { ctx->mem_limit = bytes; }

static const char *const k_precision[] = {"fp32", "fp16", "bf16", "auto"};

const char *vkr_precision_name(vkr_precision p) {
    return p >= VKR_PRECISION_FP32 && p <= VKR_PRECISION_AUTO ? k_precision[p] : "?";
}

vkr_status vkr_precision_parse(const char *s, vkr_precision *out) {
    for (int i = 0; i <= VKR_PRECISION_AUTO; i++)
        if (s && !strcmp(s, k_precision[i])) {
            *out = (vkr_precision)i;
            return VKR_OK;
        }
    return vkr_fail(VKR_ERR_INVALID, "precision \"%s\": expected fp32, fp16, bf16 or auto", s ? s : "");
}

vkr_status vkr_precision_resolve(const vkr_context *ctx, vkr_precision p, vkr_precision *out) {
    switch (p) {
    case VKR_PRECISION_FP32:
    case VKR_PRECISION_AUTO: /* no faster kernel is verified on any device yet (README, --precision) */
        *out = VKR_PRECISION_FP32;
        return VKR_OK;
    case VKR_PRECISION_FP16:
        if (!ctx->info.fp16_arithmetic)
            return vkr_fail(VKR_ERR_UNSUPPORTED, "precision fp16: device \"%s\" lacks shaderFloat16", ctx->info.name);
        *out = p;
        return VKR_OK;
    case VKR_PRECISION_BF16: /* rounded on the fp32 bit pattern: any device */
        *out = p;
        return VKR_OK;
    }
    return vkr_fail(VKR_ERR_INVALID, "precision %d: not a vkr_precision", (int)p);
}

vkr_status vkr_context_set_precision(vkr_context *ctx, vkr_precision p) {
    vkr_precision r = VKR_PRECISION_FP32;
    vkr_status s = vkr_precision_resolve(ctx, p, &r);
    if (!s) ctx->precision = r;
    return s;
}

vkr_precision vkr_context_precision(const vkr_context *ctx) { return ctx ? ctx->precision : VKR_PRECISION_FP32; }
