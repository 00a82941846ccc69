/* TEMPORARY: replaced by the real benchmark. */
#include "cli.h"
#include <stdio.h>
const char usage_bench[] = "usage: vkrun bench --op conv2d|dense\n";
int cmd_bench(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "not implemented\n"); return 1; }
