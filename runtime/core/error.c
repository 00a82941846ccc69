/* Status codes, the thread-local error message and the log sink. */
#include "core/internal.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char g_msg[1024];

const char *vkr_status_name(vkr_status s) {
    switch (s) {
    case VKR_OK: return "ok";
    case VKR_ERR_VULKAN: return "vulkan error";
    case VKR_ERR_NO_DEVICE: return "no device";
    case VKR_ERR_OUT_OF_MEMORY: return "out of memory";
    case VKR_ERR_INVALID: return "invalid argument";
    case VKR_ERR_IO: return "i/o error";
    case VKR_ERR_FORMAT: return "format error";
    case VKR_ERR_UNSUPPORTED: return "unsupported";
    case VKR_ERR_VALIDATION: return "validation error";
    case VKR_ERR_NOT_FOUND: return "not found";
    case VKR_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown status";
}

const char *vkr_last_error(void) { return g_msg; }

vkr_status vkr_fail(vkr_status s, const char *fmt, ...) {
    char tmp[sizeof g_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap); /* fmt may use vkr_last_error() itself */
    va_end(ap);
    snprintf(g_msg, sizeof g_msg, "%s", tmp);
    return s;
}

const char *vkr_vk_result_name(int r) {
    switch ((VkResult)r) {
#define C(x) case x: return #x;
    C(VK_SUCCESS) C(VK_NOT_READY) C(VK_TIMEOUT) C(VK_EVENT_SET) C(VK_EVENT_RESET) C(VK_INCOMPLETE)
    C(VK_ERROR_OUT_OF_HOST_MEMORY) C(VK_ERROR_OUT_OF_DEVICE_MEMORY) C(VK_ERROR_INITIALIZATION_FAILED)
    C(VK_ERROR_DEVICE_LOST) C(VK_ERROR_MEMORY_MAP_FAILED) C(VK_ERROR_LAYER_NOT_PRESENT)
    C(VK_ERROR_EXTENSION_NOT_PRESENT) C(VK_ERROR_FEATURE_NOT_PRESENT) C(VK_ERROR_INCOMPATIBLE_DRIVER)
    C(VK_ERROR_TOO_MANY_OBJECTS) C(VK_ERROR_FORMAT_NOT_SUPPORTED) C(VK_ERROR_FRAGMENTED_POOL)
    C(VK_ERROR_UNKNOWN) C(VK_ERROR_OUT_OF_POOL_MEMORY) C(VK_ERROR_INVALID_EXTERNAL_HANDLE)
    C(VK_ERROR_FRAGMENTATION) C(VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS) C(VK_PIPELINE_COMPILE_REQUIRED)
#undef C
    default: return "VkResult(unknown)";
    }
}

static vkr_log_fn g_log_fn;
static void *g_log_ud;

void vkr_set_log(vkr_log_fn fn, void *ud) {
    g_log_ud = ud;
    g_log_fn = fn;
}

void vkr_log(vkr_log_level level, const char *fmt, ...) {
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (g_log_fn) g_log_fn(level, msg, g_log_ud);
    else fprintf(stderr, "vkrun: %s: %s\n", level == VKR_LOG_ERROR ? "error" : "warning", msg);
}
