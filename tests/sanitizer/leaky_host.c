/* Hosts the test module of the sanitizer build (tests/sanitizer/leaky_module.cmake):
 *   leaky_host module LIB   dlopen LIB, call its vkr_leaky_module_leak(), dlclose it, exit 0
 *   leaky_host drivers      create and destroy a vkr_context, then check that every library
 *                           keep_drivers.c kept is still loaded (RTLD_NOLOAD), and say whether
 *                           the Vulkan loader unloaded lavapipe when nothing kept it */
#define _GNU_SOURCE
#include "keep_drivers.h"
#include "vkrun.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

static int run_module(const char *lib) {
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "leaky_host: cannot load %s: %s\n", lib, dlerror());
        return 2;
    }
    int (*leak)(void) = (int (*)(void))dlsym(h, "vkr_leaky_module_leak");
    if (!leak || leak()) {
        fprintf(stderr, "leaky_host: %s: no vkr_leaky_module_leak or it failed\n", lib);
        return 2;
    }
    if (dlclose(h)) {
        fprintf(stderr, "leaky_host: dlclose %s: %s\n", lib, dlerror());
        return 2;
    }
    void *again = dlopen(lib, RTLD_LAZY | RTLD_NOLOAD);
    printf("leaky_host: %s leaked on purpose and was closed; still mapped: %s\n", lib, again ? "yes" : "no");
    if (again) dlclose(again);
    return 0;
}

static int run_drivers(void) {
    vkr_context *ctx = NULL;
    vkr_context_opts o = {.validation = -1};
    if (vkr_context_create(&o, &ctx)) {
        fprintf(stderr, "leaky_host: no Vulkan device: %s\n", vkr_last_error());
        return 77;
    }
    printf("leaky_host: device %s\n", vkr_context_device(ctx)->name);
    unsigned bad = vkr_validation_errors(ctx) + vkr_validation_warnings(ctx);
    vkr_context_destroy(ctx);
    if (bad) {
        fprintf(stderr, "leaky_host: the validation layer reported %u message(s)\n", bad);
        return 1;
    }
    int n = vkr_keep_drivers_count(), missing = 0;
    for (int i = 0; i < n; i++) {
        void *h = dlopen(vkr_keep_drivers_lib(i), RTLD_LAZY | RTLD_NOLOAD);
        printf("%s kept %s\n", h ? "PASS" : "FAIL", vkr_keep_drivers_lib(i));
        if (h) dlclose(h);
        else missing++;
    }
    /* informational: is lavapipe still loaded after the instance is gone? */
    void *lvp = dlopen("libvulkan_lvp.so", RTLD_LAZY | RTLD_NOLOAD);
    printf("leaky_host: after vkDestroyInstance libvulkan_lvp.so is %s\n", lvp ? "loaded" : "unloaded");
    if (lvp) dlclose(lvp);
    printf("leaky_host: %d driver/layer libraries kept, %d missing\n", n, missing);
    return missing ? 1 : 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0); /* LeakSanitizer ends the process without flushing stdio */
    if (argc == 3 && !strcmp(argv[1], "module")) return run_module(argv[2]);
    if (argc == 2 && !strcmp(argv[1], "drivers")) return run_drivers();
    fprintf(stderr, "usage: leaky_host module LIB | leaky_host drivers\n");
    return 2;
}
