/* The local communicator (include/vkrun_comm.h: ranks as threads of one process, what
 * `vkrun train --devices` uses): sums against sums computed here in rank order (bit-exact),
 * broadcasts, started sums, and the fault paths -- a rank that aborts makes the others' next
 * collective fail at once naming it, a rank that never arrives makes the others fail after the
 * timeout, not hang. */
#include "test_util.h"
#include "vkrun_comm.h"

#include <math.h>
#include <pthread.h>
#include <time.h>

#define R 3
#define N 1000

typedef struct {
    vkr_comm *c;
    int mode;            /* 0: collectives; 1: rank 1 aborts; 2: rank 1 stays away */
    vkr_status s[6];
    float f[N];
    double d[4];
    char bc[16];
    double secs;
    char err[1024];
} job;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static float val(int r, int i) { return sinf((float)(r * 7919 + i)) * (float)(1 + r); }

static void *run(void *arg) {
    job *j = arg;
    int r = vkr_comm_rank(j->c);
    for (int i = 0; i < N; i++) j->f[i] = val(r, i);
    for (int i = 0; i < 4; i++) j->d[i] = r * 10.0 + i;
    snprintf(j->bc, sizeof j->bc, "rank%d", r);
    if (j->mode == 0) {
        j->s[0] = vkr_comm_allreduce_f32(j->c, j->f, N);
        j->s[1] = vkr_comm_allreduce_f64(j->c, j->d, 4);
        j->s[2] = vkr_comm_bcast(j->c, j->bc, sizeof j->bc, 2);
        vkr_comm_req *q = NULL;
        float g[5] = {1, 2, 3, 4, (float)r};
        j->s[3] = vkr_comm_iallreduce_f32(j->c, g, 5, &q);
        if (!j->s[3]) j->s[3] = vkr_comm_wait(j->c, q);
        j->d[3] = g[4]; /* 0 + 1 + 2 */
        j->s[4] = vkr_comm_barrier(j->c);
        return NULL;
    }
    double t0 = now();
    if (r == 1 && j->mode == 1) {
        vkr_comm_abort(j->c, "out of device memory (test)");
        return NULL;
    }
    if (r == 1 && j->mode == 2) return NULL; /* never arrives */
    j->s[0] = vkr_comm_allreduce_f32(j->c, j->f, N);
    snprintf(j->err, sizeof j->err, "%s", j->s[0] ? vkr_last_error() : "");
    j->secs = now() - t0;
    return NULL;
}

static void group(int mode, double timeout, job *jobs) {
    vkr_comm *c[R];
    CHECK_OK(vkr_comm_local_create(R, c), "local communicator of %d ranks", R);
    pthread_t th[R];
    for (int r = 0; r < R; r++) {
        memset(&jobs[r], 0, sizeof jobs[r]);
        jobs[r].c = c[r];
        jobs[r].mode = mode;
        if (timeout > 0) vkr_comm_set_timeout(c[r], timeout);
        pthread_create(&th[r], NULL, run, &jobs[r]);
    }
    for (int r = 0; r < R; r++) pthread_join(th[r], NULL);
    for (int r = 0; r < R; r++) vkr_comm_free(c[r]);
}

int main(void) {
    job j[R];
    CHECK(vkr_comm_size(NULL) == 1 && vkr_comm_rank(NULL) == 0 && !strcmp(vkr_comm_backend(NULL), "none"),
          "no communicator: rank 0 of 1");
    group(0, 0, j);
    int ok = 1, same = 1;
    for (int r = 0; r < R; r++) ok &= !j[r].s[0] && !j[r].s[1] && !j[r].s[2] && !j[r].s[3] && !j[r].s[4];
    CHECK(ok, "every collective returned VKR_OK on every rank");
    for (int i = 0; i < N; i++) {
        float want = val(0, i);
        for (int r = 1; r < R; r++) want += val(r, i); /* rank order, in float: the same rounding */
        for (int r = 0; r < R; r++) same &= memcmp(&j[r].f[i], &want, sizeof want) == 0;
    }
    CHECK(same, "float sum of %d values over %d ranks: bit-identical to the rank-order sum on every rank", N, R);
    int dok = 1;
    for (int r = 0; r < R; r++)
        for (int i = 0; i < 3; i++) dok &= j[r].d[i] == 30.0 + 3 * i; /* (0 + 10 + 20) + 3 i */
    CHECK(dok, "double sums exact");
    int bok = 1;
    for (int r = 0; r < R; r++) bok &= !strcmp(j[r].bc, "rank2") && j[r].d[3] == 3.0;
    CHECK(bok, "broadcast from rank 2 reaches every rank; a started sum completes (0+1+2 = 3)");

    group(1, 0, j);
    CHECK(j[0].s[0] == VKR_ERR_IO && j[2].s[0] == VKR_ERR_IO && strstr(j[0].err, "rank 1 failed") &&
              strstr(j[0].err, "out of device memory (test)") && j[0].secs < 5 && j[2].secs < 5,
          "rank 1 aborts: ranks 0 and 2 fail in %.2f / %.2f s: \"%s\"", j[0].secs, j[2].secs, j[0].err);

    group(2, 1.0, j);
    CHECK(j[0].s[0] == VKR_ERR_IO && j[2].s[0] == VKR_ERR_IO && strstr(j[0].err, "a rank died or hangs") &&
              j[0].secs >= 0.9 && j[0].secs < 5 && j[2].secs < 5,
          "rank 1 never arrives (timeout 1 s): the others fail in %.2f / %.2f s: \"%s\"", j[0].secs, j[2].secs,
          j[0].err);
    if (vkr_comm_mpi_available()) { /* MPI_Init outside mpirun is not for a unit test */
        printf("note: the MPI backend (%s) is exercised by ctest mpi_train under mpirun\n", vkr_comm_mpi_version());
    } else {
        vkr_comm *m = NULL;
        vkr_status s = vkr_comm_mpi_init(NULL, NULL, &m);
        CHECK(s == VKR_ERR_UNSUPPORTED && m == NULL && strstr(vkr_last_error(), "libopenmpi-dev"),
              "built without MPI: vkr_comm_mpi_init says how to get it: %s", vkr_last_error());
    }
    return test_finish();
}
