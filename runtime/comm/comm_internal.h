/* Communicators (include/vkrun_comm.h): the shared struct and the MPI backend's entry points
 * (runtime/comm/comm_mpi.c, compiled with VKRUN_HAVE_MPI). */
#ifndef VKRUN_COMM_INTERNAL_H
#define VKRUN_COMM_INTERNAL_H

#include "vkrun_comm.h"

#include <pthread.h>

typedef enum { VKR__COMM_LOCAL = 1, VKR__COMM_MPI = 2 } vkr__comm_kind;

/* The ranks of a local group share one of these. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n, arrived, refs;
    unsigned long gen;
    int aborted;
    char why[512];
    void **bufs;     /* [n]: each rank's buffer in the current collective */
    void *scratch;   /* rank 0's sum */
    size_t scratch_bytes;
} vkr__local_group;

struct vkr_comm_req {
    int used;
    void *mpi;       /* MPI_Request (comm_mpi.c) */
    const char *what;
};

struct vkr_comm {
    vkr__comm_kind kind;
    int rank, size;
    double timeout;  /* seconds */
    char host[256];
    vkr__local_group *grp;
    vkr_comm_req reqs[VKR_COMM_MAX_PENDING];
};

vkr_status vkr__mpi_init(int *argc, char ***argv, vkr_comm *c);
void vkr__mpi_finalize(vkr_comm *c);
vkr_status vkr__mpi_allreduce(vkr_comm *c, void *buf, size_t n, int f64);
vkr_status vkr__mpi_iallreduce(vkr_comm *c, float *buf, size_t n, vkr_comm_req *r);
vkr_status vkr__mpi_wait(vkr_comm *c, vkr_comm_req *r);
vkr_status vkr__mpi_test(vkr_comm *c, vkr_comm_req *r, int *done);
vkr_status vkr__mpi_bcast(vkr_comm *c, void *buf, size_t bytes, int root);
vkr_status vkr__mpi_barrier(vkr_comm *c);
const char *vkr__mpi_version(void);

#endif
