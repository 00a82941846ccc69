/* vkrun bench --allreduce MB: the time of summing MB megabytes of fp32 over the ranks of an MPI
 * launch through vkrun's communicator (the gradient sum of data-parallel training), whole and
 * in 25 MiB buckets; docs/scaling.md uses its figures. */
#include "cli.h"
#include "vkrun_comm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One timed sum of buf (n floats, every rank's set to rank + 1) in buckets of `bucket` floats
 * (0: one call); checks the result (the sum of 1..N). */
static vkr_status one_sum(vkr_comm *c, float *buf, size_t n, size_t bucket, double *secs) {
    int N = vkr_comm_size(c);
    for (size_t i = 0; i < n; i++) buf[i] = (float)(vkr_comm_rank(c) + 1);
    vkr_status s = vkr_comm_barrier(c);
    double t0 = now_s();
    if (!s && !bucket) s = vkr_comm_allreduce_f32(c, buf, n);
    else if (!s) {
        vkr_comm_req *req[VKR_COMM_MAX_PENDING];
        size_t k = 0;
        for (size_t i = 0; i < n && !s; i += bucket, k++) {
            if (k == VKR_COMM_MAX_PENDING) return vkr_fail(VKR_ERR_INVALID, "more than %d buckets", VKR_COMM_MAX_PENDING);
            s = vkr_comm_iallreduce_f32(c, buf + i, n - i < bucket ? n - i : bucket, &req[k]);
        }
        for (size_t q = 0; q < k; q++) {
            vkr_status w = vkr_comm_wait(c, req[q]);
            if (!s) s = w;
        }
    }
    *secs = now_s() - t0;
    float want = (float)N * (N + 1) / 2;
    for (size_t i = 0; !s && i < n; i++)
        if (buf[i] != want) return vkr_fail(VKR_ERR_INVALID, "all-reduce result %g at %zu, not %g", buf[i], i, want);
    return s;
}

int cmd_bench_allreduce(int argc, char **argv) {
    double mb = 0;
    int iters = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--allreduce") && i + 1 < argc) mb = atof(argv[++i]);
        else if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = atoi(argv[++i]);
        else {
            fprintf(stderr, "vkrun bench --allreduce: unknown option %s (only --allreduce MB and --iters N)\n", argv[i]);
            return 2;
        }
    }
    if (!(mb > 0 && mb <= 4096) || iters < 1 || iters > 1000) {
        fprintf(stderr, "vkrun bench: --allreduce wants megabytes in (0, 4096], --iters 1 to 1000\n");
        return 2;
    }
    const char *ws = getenv("OMPI_COMM_WORLD_SIZE");
    if (!ws) ws = getenv("PMI_SIZE");
    if (!ws || atoi(ws) < 2) {
        fprintf(stderr, "vkrun bench --allreduce: run it under mpirun with 2 or more processes "
                        "(mpirun -np 2 vkrun bench --allreduce 94)\n");
        return 2;
    }
    vkr_comm *c = NULL;
    vkr_status s = vkr_comm_mpi_init(&argc, &argv, &c);
    if (s) return cli_error("MPI", s);
    size_t n = (size_t)(mb * 1e6 / 4);
    float *buf = malloc(n * sizeof(float));
    double *t[2] = {malloc(sizeof(double) * (size_t)iters), malloc(sizeof(double) * (size_t)iters)};
    if (!buf || !t[0] || !t[1]) s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    double warm;
    if (!s) s = one_sum(c, buf, n, 0, &warm); /* warm-up: connections, registration */
    for (int it = 0; it < iters && !s; it++)
        for (int m = 0; m < 2 && !s; m++) s = one_sum(c, buf, n, m ? (size_t)25 << 18 : 0, &t[m][it]);
    int N = vkr_comm_size(c);
    if (!s && vkr_comm_rank(c) == 0) {
        printf("all-reduce (sum) of %.1f MB of fp32 over %d processes (%s, %s), median of %d after a warm-up:\n", mb, N,
               vkr_comm_mpi_version(), vkr_comm_host(c), iters);
        for (int m = 0; m < 2; m++) {
            qsort(t[m], (size_t)iters, sizeof(double), cmp_d);
            double sec = t[m][iters / 2], bus = 2.0 * (N - 1) / N * mb * 1e6 / sec;
            printf("  %-22s %8.2f ms  algorithm bandwidth %6.2f GB/s  bus bandwidth 2(N-1)/N*size/t %6.2f GB/s "
                   "(%.1f Gb/s)\n", m ? "in 25 MiB buckets:" : "one call:", sec * 1e3, mb * 1e-3 / sec, bus * 1e-9,
                   bus * 8e-9);
        }
    }
    free(buf);
    free(t[0]);
    free(t[1]);
    if (s) {
        fprintf(stderr, "vkrun bench: rank %d: %s\n", vkr_comm_rank(c), cli_esc_msg(vkr_last_error()));
        return 1; /* without MPI_Finalize: mpirun ends the other ranks */
    }
    vkr_comm_free(c);
    return 0;
}
