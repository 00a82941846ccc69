/* vkrun devices: every Vulkan device with its limits. */
#include "cli.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vulkan/vulkan.h>

const char usage_devices[] =
    "usage: vkrun devices [--json]\n\n"
    "Lists every Vulkan device: index, name, type, driver, API version, memory heaps,\n"
    "limits (maxStorageBufferRange, maxMemoryAllocationSize, shared memory, workgroup\n"
    "size/invocations), subgroup size, fp16 / 16-bit storage support, timestamps.\n"
    "The device vkrun would choose by default is marked with '*'.\n\n"
    "  --json    print the same as JSON\n";

static void memtype_flags(uint32_t f, char *buf, size_t n) {
    snprintf(buf, n, "%s%s%s%s", f & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT ? "device-local " : "",
             f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT ? "host-visible " : "",
             f & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT ? "host-coherent " : "",
             f & VK_MEMORY_PROPERTY_HOST_CACHED_BIT ? "host-cached " : "");
    size_t l = strlen(buf);
    if (l && buf[l - 1] == ' ') buf[l - 1] = 0;
}

static cJSON *device_json(const vkr_device_info *d, int chosen) {
    cJSON *o = cJSON_CreateObject();
    char ver[32];
    cJSON_AddNumberToObject(o, "index", d->index);
    cJSON_AddBoolToObject(o, "default", chosen);
    cJSON_AddStringToObject(o, "name", d->name);
    cJSON_AddStringToObject(o, "type", d->type_name);
    cJSON_AddNumberToObject(o, "vendor_id", d->vendor_id);
    cJSON_AddNumberToObject(o, "device_id", d->device_id);
    cJSON_AddStringToObject(o, "driver_name", d->driver_name);
    cJSON_AddStringToObject(o, "driver_info", d->driver_info);
    snprintf(ver, sizeof ver, "%u.%u.%u", VK_API_VERSION_MAJOR(d->api_version), VK_API_VERSION_MINOR(d->api_version),
             VK_API_VERSION_PATCH(d->api_version));
    cJSON_AddStringToObject(o, "api_version", ver);
    cJSON *lim = cJSON_AddObjectToObject(o, "limits");
    cJSON_AddNumberToObject(lim, "maxStorageBufferRange", (double)d->max_storage_buffer_range);
    cJSON_AddNumberToObject(lim, "maxMemoryAllocationSize", (double)d->max_memory_allocation_size);
    cJSON_AddNumberToObject(lim, "maxTexelBufferElements", (double)d->max_texel_buffer_elements);
    cJSON_AddNumberToObject(lim, "minStorageBufferOffsetAlignment", (double)d->min_storage_buffer_offset_alignment);
    cJSON_AddNumberToObject(lim, "maxComputeSharedMemorySize", d->max_compute_shared_memory_size);
    int ws[3] = {(int)d->max_workgroup_size[0], (int)d->max_workgroup_size[1], (int)d->max_workgroup_size[2]};
    cJSON_AddItemToObject(lim, "maxComputeWorkGroupSize", cJSON_CreateIntArray(ws, 3));
    cJSON_AddNumberToObject(lim, "maxComputeWorkGroupInvocations", d->max_workgroup_invocations);
    cJSON_AddNumberToObject(lim, "maxPushConstantsSize", d->max_push_constants_size);
    cJSON_AddNumberToObject(o, "subgroup_size", d->subgroup_size);
    cJSON_AddBoolToObject(o, "fp16_arithmetic", d->fp16_arithmetic);
    cJSON_AddBoolToObject(o, "storage_16bit", d->storage_16bit);
    cJSON_AddBoolToObject(o, "timestamps", d->timestamps);
    cJSON_AddNumberToObject(o, "timestamp_period_ns", d->timestamp_period_ns);
    cJSON *heaps = cJSON_AddArrayToObject(o, "memory_heaps");
    for (uint32_t h = 0; h < d->heap_count; h++) {
        cJSON *ho = cJSON_CreateObject();
        cJSON_AddNumberToObject(ho, "size", (double)d->heap_size[h]);
        cJSON_AddBoolToObject(ho, "device_local", d->heap_device_local[h]);
        cJSON_AddItemToArray(heaps, ho);
    }
    cJSON *types = cJSON_AddArrayToObject(o, "memory_types");
    for (uint32_t t = 0; t < d->memtype_count; t++) {
        char fl[128];
        memtype_flags(d->memtype_flags[t], fl, sizeof fl);
        cJSON *to = cJSON_CreateObject();
        cJSON_AddNumberToObject(to, "heap", d->memtype_heap[t]);
        cJSON_AddStringToObject(to, "flags", fl);
        cJSON_AddItemToArray(types, to);
    }
    return o;
}

static void device_text(const vkr_device_info *d, int chosen) {
    printf("%s[%d] %s\n", chosen ? "*" : " ", d->index, d->name);
    printf("    type: %s   vendor 0x%04x device 0x%04x\n", d->type_name, d->vendor_id, d->device_id);
    printf("    driver: %s %s\n", d->driver_name[0] ? d->driver_name : "(unknown)", d->driver_info);
    printf("    Vulkan API: %u.%u.%u\n", VK_API_VERSION_MAJOR(d->api_version), VK_API_VERSION_MINOR(d->api_version),
           VK_API_VERSION_PATCH(d->api_version));
    for (uint32_t h = 0; h < d->heap_count; h++)
        printf("    memory heap %u: %.1f MiB%s\n", h, d->heap_size[h] / 1048576.0, d->heap_device_local[h] ? " (device-local)" : "");
    for (uint32_t t = 0; t < d->memtype_count; t++) {
        char fl[128];
        memtype_flags(d->memtype_flags[t], fl, sizeof fl);
        printf("    memory type %u: heap %u %s\n", t, d->memtype_heap[t], fl);
    }
    printf("    maxStorageBufferRange: %llu (%.1f MiB)\n", (unsigned long long)d->max_storage_buffer_range,
           d->max_storage_buffer_range / 1048576.0);
    printf("    maxMemoryAllocationSize: %llu (%.1f MiB)\n", (unsigned long long)d->max_memory_allocation_size,
           d->max_memory_allocation_size / 1048576.0);
    printf("    maxTexelBufferElements: %llu\n", (unsigned long long)d->max_texel_buffer_elements);
    printf("    maxComputeSharedMemorySize: %u bytes\n", d->max_compute_shared_memory_size);
    printf("    maxComputeWorkGroupSize: %u x %u x %u, invocations %u\n", d->max_workgroup_size[0],
           d->max_workgroup_size[1], d->max_workgroup_size[2], d->max_workgroup_invocations);
    printf("    subgroup size: %u\n", d->subgroup_size);
    printf("    fp16 arithmetic: %s, 16-bit storage: %s\n", d->fp16_arithmetic ? "yes" : "no", d->storage_16bit ? "yes" : "no");
    printf("    timestamps: %s (period %.3g ns)\n", d->timestamps ? "yes" : "no", d->timestamp_period_ns);
}

int cmd_devices(int argc, char **argv) {
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else {
            return cli_unknown_option("devices", argv[i], usage_devices);
        }
    }
    vkr_device_info *infos = NULL;
    int n = 0, chosen = -1;
    vkr_status s = vkr_enumerate_devices(&infos, &n);
    if (s) return cli_error("devices", s);
    if (vkr_select_device(infos, n, NULL, &chosen)) chosen = -1;
    if (json) {
        cJSON *arr = cJSON_CreateArray();
        for (int i = 0; i < n; i++) cJSON_AddItemToArray(arr, device_json(&infos[i], i == chosen));
        char *txt = cJSON_Print(arr);
        if (txt) puts(txt);
        free(txt);
        cJSON_Delete(arr);
    } else {
        printf("%d Vulkan device%s (* = default choice)\n", n, n == 1 ? "" : "s");
        for (int i = 0; i < n; i++) device_text(&infos[i], i == chosen);
    }
    free(infos);
    return 0;
}
