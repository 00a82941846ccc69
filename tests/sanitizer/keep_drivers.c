/* Keeps every Vulkan driver and layer library loaded until the process exits: linked into
 * the executables of the sanitizer build only (-DVKRUN_SANITIZE=ON; never into libvkrun, the
 * Release CLI or an install).
 *
 * Why (issue 23): the Khronos loader dlcloses each ICD (lavapipe, and with it LLVM, libxml2
 * and ICU) in vkDestroyInstance.  A block the driver stack allocated and then forgot, or kept
 * only in one of its own globals, is reported by LeakSanitizer at exit; by then the module is
 * unmapped, the frame reads "<unknown module>", and no module suppression in lsan.supp can
 * match it.  Whether the driver leaks at all differs between machines (CPU model, the code
 * paths LLVM takes), so on some machines every test that made a Vulkan instance failed.
 *
 * Before main, this dlopens with RTLD_NODELETE every library that the loader's manifests name
 * (ICDs, explicit and implicit layers), in the places the loader reads them from: the loader's
 * own dlopen / dlclose then only counts references, the modules stay mapped, their globals
 * stay roots for LeakSanitizer, and a frame in them keeps its module's name, so lsan.supp's
 * third-party rules apply.  ctests lsan_module_unloaded / lsan_module_kept prove the
 * mechanism with a leaking test module (tests/sanitizer/leaky_module.c), keep_drivers_loaded
 * that the real drivers stay loaded, lsan_catches_vkrun_leaks that vkrun's own leaks still fail.
 *
 * VKRUN_KEEP_DRIVERS=0 turns it off (to show the failure); =verbose lists what it loaded. */
#define _GNU_SOURCE
#include "keep_drivers.h"

#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LIBS 64
static char kept[MAX_LIBS][PATH_MAX];
static int n_kept;
static int verbose;

static void keep(const char *lib) {
    for (int i = 0; i < n_kept; i++)
        if (!strcmp(kept[i], lib)) return;
    if (n_kept == MAX_LIBS) return;
    if (!dlopen(lib, RTLD_LAZY | RTLD_LOCAL | RTLD_NODELETE)) {
        if (verbose) fprintf(stderr, "keep_drivers: cannot load %s: %s\n", lib, dlerror());
        return;
    }
    snprintf(kept[n_kept++], PATH_MAX, "%s", lib);
    if (verbose) fprintf(stderr, "keep_drivers: kept %s\n", lib);
}

/* Every "library_path" string of one manifest (an ICD has one, a layer file may list several);
 * resolved as the loader does: absolute as is, with a '/' relative to the manifest's folder,
 * a bare name through the ordinary library search. */
static void keep_manifest(const char *file) {
    FILE *f = fopen(file, "rb");
    if (!f) return;
    char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    for (char *p = text; (p = strstr(p, "\"library_path\"")) != NULL;) {
        p += strlen("\"library_path\"");
        p += strspn(p, " \t\r\n");
        if (*p != ':') continue;
        p++;
        p += strspn(p, " \t\r\n");
        if (*p != '"') continue;
        char lib[PATH_MAX];
        size_t k = 0;
        for (p++; *p && *p != '"' && k + 1 < sizeof lib; p++) {
            if (*p == '\\' && p[1]) p++; /* \" \\ \/ */
            lib[k++] = *p;
        }
        lib[k] = 0;
        if (!k) continue;
        char path[PATH_MAX];
        const char *slash = strrchr(file, '/');
        if (lib[0] != '/' && strchr(lib, '/') && slash)
            snprintf(path, sizeof path, "%.*s/%s", (int)(slash - file), file, lib);
        else
            snprintf(path, sizeof path, "%s", lib);
        keep(path);
    }
}

/* A manifest file, or a folder of them (*.json) */
static void keep_path(const char *path) {
    DIR *d = opendir(path);
    if (!d) {
        keep_manifest(path);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json")) continue;
        char file[PATH_MAX];
        snprintf(file, sizeof file, "%s/%s", path, e->d_name);
        keep_manifest(file);
    }
    closedir(d);
}

/* Each entry of a ':'-separated list (an environment variable), or each entry + "/vulkan/" + sub */
static void keep_list(const char *list, const char *sub) {
    if (!list || !*list) return;
    char buf[8192];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *tok = strtok_r(buf, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
        if (!sub) {
            keep_path(tok);
            continue;
        }
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/vulkan/%s", tok, sub);
        keep_path(dir);
    }
}

static const char *env_or(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

/* The folders the loader searches, in its order: XDG config, /etc, XDG data */
static void keep_search_dirs(const char *sub) {
    char home_config[PATH_MAX] = "", home_data[PATH_MAX] = "";
    const char *home = getenv("HOME");
    if (home) {
        snprintf(home_config, sizeof home_config, "%s/.config", home);
        snprintf(home_data, sizeof home_data, "%s/.local/share", home);
    }
    keep_list(env_or("XDG_CONFIG_HOME", home_config), sub);
    keep_list(env_or("XDG_CONFIG_DIRS", "/etc/xdg"), sub);
    keep_list("/etc", sub);
    keep_list(env_or("XDG_DATA_HOME", home_data), sub);
    keep_list(env_or("XDG_DATA_DIRS", "/usr/local/share:/usr/share"), sub);
}

__attribute__((constructor)) static void vkr_keep_drivers(void) {
    const char *mode = getenv("VKRUN_KEEP_DRIVERS");
    if (mode && !strcmp(mode, "0")) return;
    verbose = mode && !strcmp(mode, "verbose");
    /* drivers: an override list replaces the search, as in the loader */
    const char *icds = getenv("VK_DRIVER_FILES");
    if (!icds || !*icds) icds = getenv("VK_ICD_FILENAMES");
    if (icds && *icds)
        keep_list(icds, NULL);
    else
        keep_search_dirs("icd.d");
    keep_list(getenv("VK_ADD_DRIVER_FILES"), NULL);
    /* layers: explicit (the validation layer) and implicit (Mesa's device-select) */
    const char *layers = getenv("VK_LAYER_PATH");
    if (layers && *layers)
        keep_list(layers, NULL);
    else
        keep_search_dirs("explicit_layer.d");
    keep_list(getenv("VK_ADD_LAYER_PATH"), NULL);
    keep_search_dirs("implicit_layer.d");
}

int vkr_keep_drivers_count(void) { return n_kept; }

const char *vkr_keep_drivers_lib(int i) { return i >= 0 && i < n_kept ? kept[i] : NULL; }
