/* Shared by the model tests (test_model.c: files, shapes, editing; test_model_graph.c: the
 * graph runtime against the double reference): PASS/FAIL lines and a scratch directory. */
#ifndef VKRUN_TEST_MODEL_H
#define VKRUN_TEST_MODEL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"

static char g_dir[256];

static void result(int ok, const char *name, const char *fmt, ...) {
    char msg[1024] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", name, msg[0] ? ": " : "", msg);
    if (ok) g_pass++;
    else g_fail++;
}

static const char *tmp_path(const char *name) {
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static void test_dir_create(const char *tag) {
    snprintf(g_dir, sizeof g_dir, "/tmp/vkrun-test-%s-%d", tag, (int)getpid());
    mkdir(g_dir, 0755);
}

static void test_dir_remove(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", g_dir);
}

#endif
