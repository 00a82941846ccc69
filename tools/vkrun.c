/* vkrun: the command-line tool. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vulkan/vulkan.h> /* VK_API_VERSION_MAJOR and friends */

static const vkr_cli_command k_commands[] = {
    {"train", cmd_train, "transfer learning on a folder of images (base + new head)", usage_train},
    {"evaluate", cmd_evaluate, "loss, accuracy, confusion matrix of a trained model", usage_evaluate},
    {"predict", cmd_predict, "class probabilities of images", usage_predict},
    {"summary", cmd_summary, "layers, output shapes and parameter counts of a model", usage_summary},
    {"forward", cmd_forward, "run a model on a .npy batch", usage_forward},
    {"devices", cmd_devices, "list Vulkan devices with their limits", usage_devices},
    {"selftest", cmd_selftest, "check every op on the device against its C reference", usage_selftest},
    {"bench", cmd_bench, "GPU time per layer of a model, or GFLOP/s of an op", usage_bench},
    {"tune", cmd_tune, "measure the tiled GEMM's tile shapes on this device and keep the fastest", usage_tune},
};
#define NCOMMANDS (sizeof k_commands / sizeof k_commands[0])

static void usage(FILE *f) {
    fprintf(f, "vkrun: deep learning on Vulkan compute shaders\n\n"
               "usage: vkrun <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) fprintf(f, "  %-10s %s\n", k_commands[i].name, k_commands[i].summary);
    fprintf(f, "\n`vkrun <command> --help` describes a command and its flags; `vkrun --version` the build and drivers.\n"
               "environment: VKRUN_DEVICE (index or name substring), VKRUN_VALIDATION=1 (Khronos validation layer),\n"
               "             VKRUN_CACHE_DIR (pipeline cache; default $XDG_CACHE_HOME/vkrun or ~/.cache/vkrun),\n"
               "             under mpirun: VKRUN_DEVICES (devices by local rank, e.g. 0,1), VKRUN_COMM_TIMEOUT (s, default 300)\n");
}

/* vkrun --version: vkrun's version and commit, the Vulkan loader's version, each device's driver */
static int version(void) {
    printf("vkrun %s (git %s)\n", vkr_version(), vkr_git_commit());
    uint32_t v = 0;
    if (vkr_loader_version(&v) == VKR_OK)
        printf("Vulkan loader: %u.%u.%u\n", VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v), VK_API_VERSION_PATCH(v));
    vkr_device_info *d = NULL;
    int n = 0;
    if (vkr_enumerate_devices(&d, &n) != VKR_OK) {
        printf("devices: none (%s)\n", cli_esc_msg(vkr_last_error()));
        return 0;
    }
    for (int i = 0; i < n; i++)
        printf("device [%d] %s: driver %s %s, Vulkan %u.%u.%u\n", i, cli_esc(d[i].name), cli_esc(d[i].driver_name),
               cli_esc(d[i].driver_info), VK_API_VERSION_MAJOR(d[i].api_version), VK_API_VERSION_MINOR(d[i].api_version),
               VK_API_VERSION_PATCH(d[i].api_version));
    if (!n) printf("devices: none\n");
    free(d);
    return 0;
}

int main(int argc, char **argv) {
    vkr_set_log(cli_log, NULL);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V") || !strcmp(argv[1], "version")) return version();
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        if (argc > 2)
            for (size_t i = 0; i < NCOMMANDS; i++)
                if (!strcmp(argv[2], k_commands[i].name)) {
                    fputs(k_commands[i].usage, stdout);
                    return 0;
                }
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(argv[1], k_commands[i].name)) {
            if (cli_wants_help(argc - 1, argv + 1)) {
                fputs(k_commands[i].usage, stdout);
                return 0;
            }
            return k_commands[i].run(argc - 1, argv + 1);
        }
    const char *names[NCOMMANDS];
    for (size_t i = 0; i < NCOMMANDS; i++) names[i] = k_commands[i].name;
    int near = cli_closest_word(argv[1], names, (int)NCOMMANDS);
    if (near >= 0) {
        fprintf(stderr, "vkrun: unknown command \"%s\"; did you mean \"%s\"? (vkrun --help lists the commands)\n",
                cli_esc(argv[1]), names[near]);
        return 2;
    }
    fprintf(stderr, "vkrun: unknown command \"%s\"\n\n", cli_esc(argv[1]));
    usage(stderr);
    return 2;
}
