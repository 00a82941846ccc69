/* The MPI backend of the communicators (include/vkrun_comm.h), compiled when CMake found MPI
 * (VKRUN_HAVE_MPI).  Errors return (MPI_ERRORS_RETURN), never abort; every collective is
 * started non-blocking and polled, so that a peer that stopped answering ends in an error
 * after the communicator's timeout instead of a hang. */
#include "comm/comm_internal.h"

#ifdef VKRUN_HAVE_MPI
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int vkr_comm_mpi_available(void) { return 1; }

const char *vkr_comm_mpi_version(void) {
    static char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    if (!v[0] && MPI_Get_library_version(v, &len) == MPI_SUCCESS) {
        for (int i = 0; v[i]; i++)
            if (v[i] == '\n' || v[i] == ',') v[i] = 0; /* the first part: "Open MPI v4.1.4" */
    }
    return v;
}

static vkr_status mpi_err(const vkr_comm *c, const char *what, int rc) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "MPI error %d", rc);
    return vkr_fail(VKR_ERR_IO, "rank %d of %d: %s failed: %s", c->rank, c->size, what, msg);
}

vkr_status vkr__mpi_init(int *argc, char ***argv, vkr_comm *c) {
    int inited = 0, provided = 0, rc;
    MPI_Initialized(&inited);
    if (!inited && (rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided)) != MPI_SUCCESS)
        return vkr_fail(VKR_ERR_IO, "MPI_Init_thread failed (error %d)", rc);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->size);
    return VKR_OK;
}

void vkr__mpi_finalize(vkr_comm *c) {
    (void)c;
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) MPI_Finalize();
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Polls *rq until it completes or the timeout passes. */
static vkr_status mpi_poll(const vkr_comm *c, MPI_Request *rq, const char *what) {
    double t0 = now();
    long spins = 0;
    for (;;) {
        int done = 0, rc = MPI_Test(rq, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_err(c, what, rc);
        if (done) return VKR_OK;
        if (++spins > 1000) { /* busy at first (short sums), then 50 us naps */
            struct timespec ns = {0, 50000};
            nanosleep(&ns, NULL);
        }
        if (now() - t0 > c->timeout)
            return vkr_fail(VKR_ERR_IO, "rank %d of %d: no answer from the other ranks in %s for %.0f s (a rank died or "
                                        "hangs)", c->rank, c->size, what, c->timeout);
    }
}

vkr_status vkr__mpi_allreduce(vkr_comm *c, void *buf, size_t n, int f64) {
    size_t esz = f64 ? sizeof(double) : sizeof(float);
    for (size_t i = 0; i < n;) { /* MPI counts are ints */
        int k = n - i > (size_t)INT_MAX ? INT_MAX : (int)(n - i);
        MPI_Request rq;
        int rc = MPI_Iallreduce(MPI_IN_PLACE, (char *)buf + i * esz, k, f64 ? MPI_DOUBLE : MPI_FLOAT, MPI_SUM,
                                MPI_COMM_WORLD, &rq);
        if (rc != MPI_SUCCESS) return mpi_err(c, "all-reduce", rc);
        vkr_status s = mpi_poll(c, &rq, "all-reduce");
        if (s) return s;
        i += (size_t)k;
    }
    return VKR_OK;
}

vkr_status vkr__mpi_iallreduce(vkr_comm *c, float *buf, size_t n, vkr_comm_req *r) {
    if (n > (size_t)INT_MAX) return vkr_fail(VKR_ERR_INVALID, "all-reduce: %zu values in one bucket", n);
    MPI_Request *rq = malloc(sizeof *rq);
    if (!rq) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, rq);
    if (rc != MPI_SUCCESS) {
        free(rq);
        return mpi_err(c, "all-reduce", rc);
    }
    r->used = 1;
    r->mpi = rq;
    return VKR_OK;
}

vkr_status vkr__mpi_wait(vkr_comm *c, vkr_comm_req *r) {
    vkr_status s = mpi_poll(c, r->mpi, "gradient all-reduce");
    free(r->mpi);
    r->mpi = NULL;
    r->used = 0;
    return s;
}

vkr_status vkr__mpi_test(vkr_comm *c, vkr_comm_req *r, int *done) {
    int rc = MPI_Test(r->mpi, done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) return mpi_err(c, "gradient all-reduce", rc);
    if (*done) {
        free(r->mpi);
        r->mpi = NULL;
        r->used = 0;
    }
    return VKR_OK;
}

vkr_status vkr__mpi_bcast(vkr_comm *c, void *buf, size_t bytes, int root) {
    for (size_t i = 0; i < bytes || (bytes == 0 && i == 0);) {
        int k = bytes - i > (size_t)INT_MAX ? INT_MAX : (int)(bytes - i);
        MPI_Request rq;
        int rc = MPI_Ibcast((char *)buf + i, k, MPI_BYTE, root, MPI_COMM_WORLD, &rq);
        if (rc != MPI_SUCCESS) return mpi_err(c, "broadcast", rc);
        vkr_status s = mpi_poll(c, &rq, "broadcast");
        if (s) return s;
        if (bytes == 0) break;
        i += (size_t)k;
    }
    return VKR_OK;
}

vkr_status vkr__mpi_barrier(vkr_comm *c) {
    MPI_Request rq;
    int rc = MPI_Ibarrier(MPI_COMM_WORLD, &rq);
    if (rc != MPI_SUCCESS) return mpi_err(c, "barrier", rc);
    return mpi_poll(c, &rq, "barrier");
}
#else
typedef int vkr__comm_mpi_unused; /* built without MPI: runtime/comm/comm.c has the stubs */
#endif
