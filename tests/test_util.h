/* Minimal test harness: CHECK records PASS/FAIL lines, SKIP_CHECK a SKIP line;
 * test_finish prints "N passed, N failed[, N skipped]" and returns the exit status:
 * 1 on any failure, else 77 (ctest's SKIP) when a check was skipped, unless
 * VKRUN_REQUIRE_ALL=1 (set by .ci/run) makes a skip a failure. */
#ifndef VKRUN_TEST_UTIL_H
#define VKRUN_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkrun.h"

static int g_pass, g_fail, g_skip;

#define SKIP_CHECK(...)                                                                  \
    do {                                                                                 \
        g_skip++;                                                                        \
        printf("SKIP ");                                                                 \
        printf(__VA_ARGS__);                                                             \
        printf("\n");                                                                    \
        fflush(stdout);                                                                  \
    } while (0)

#define CHECK(cond, ...)                                                                 \
    do {                                                                                 \
        if (cond) {                                                                      \
            g_pass++;                                                                    \
            printf("PASS ");                                                             \
        } else {                                                                         \
            g_fail++;                                                                    \
            printf("FAIL (%s:%d: %s) ", __FILE__, __LINE__, #cond);                      \
        }                                                                                \
        printf(__VA_ARGS__);                                                             \
        printf("\n");                                                                    \
        fflush(stdout);                                                                  \
    } while (0)

#define CHECK_OK(expr, ...)                                                              \
    do {                                                                                 \
        vkr_status s__ = (expr);                                                         \
        if (s__ != VKR_OK) printf("  error: %s (%s)\n", vkr_last_error(), vkr_status_name(s__)); \
        CHECK(s__ == VKR_OK, __VA_ARGS__);                                               \
    } while (0)

static inline int test_finish(void) {
    if (g_skip) printf("%d passed, %d failed, %d skipped\n", g_pass, g_fail, g_skip);
    else printf("%d passed, %d failed\n", g_pass, g_fail);
    if (g_fail) return 1;
    if (g_skip) {
        const char *all = getenv("VKRUN_REQUIRE_ALL");
        if (all && !strcmp(all, "1")) {
            printf("FAIL: %d check(s) skipped, and VKRUN_REQUIRE_ALL=1 requires every check to run\n", g_skip);
            return 1;
        }
        return 77;
    }
    return 0;
}

/* Every Vulkan test runs with the validation layer; messages are counted. */
static inline vkr_context *test_context(const char *device, int quiet) {
    vkr_context_opts o = {.device = device, .validation = 1, .quiet_validation = quiet};
    vkr_context *ctx = NULL;
    vkr_status s = vkr_context_create(&o, &ctx);
    if (s) {
        printf("FAIL context creation: %s (%s)\n", vkr_last_error(), vkr_status_name(s));
        g_fail++;
        return NULL;
    }
    return ctx;
}

/* Fails the test when the validation layer reported anything. */
static inline void test_no_validation_messages(vkr_context *ctx, const char *what) {
    CHECK(vkr_validation_errors(ctx) == 0 && vkr_validation_warnings(ctx) == 0,
          "%s: validation layer reported %u errors, %u warnings", what, vkr_validation_errors(ctx),
          vkr_validation_warnings(ctx));
}

#endif
