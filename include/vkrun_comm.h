/* vkrun — communicators for data-parallel training (docs/scaling.md).
 *
 * A vkr_comm is one rank of a group of `size` ranks that train the same model on different
 * shards of each batch and sum their weight gradients (vkr_fit_opts.comm).  Two backends:
 *   "mpi"   one process per rank (mpirun -np N vkrun train ...); only when vkrun was built with
 *           MPI (CMake found it; vkr_comm_mpi_available() says so).
 *   "local" several ranks in one process, one thread per rank (vkrun train --devices 0,1):
 *           sums through shared memory.
 * Every collective waits at most the group's timeout (vkr_comm_set_timeout, default 300 s) for
 * the other ranks and then fails with VKR_ERR_IO naming the operation, so a rank that died or
 * hangs ends the others with an error rather than a hang.  Nothing here exits or aborts the
 * process: a failed rank calls vkr_comm_abort, after which the others' collectives fail at
 * once (local) or the launcher ends the job (mpi: mpirun kills every rank when one exits with
 * a nonzero status). */
#ifndef VKRUN_COMM_H
#define VKRUN_COMM_H

#include <stddef.h>

#include "vkrun.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vkr_comm vkr_comm;

/* 1 when this build has the MPI backend. */
int vkr_comm_mpi_available(void);
/* The version of the MPI library this build links ("Open MPI v4.1.4, ..."; "" without MPI). */
const char *vkr_comm_mpi_version(void);
/* Initializes MPI (MPI_Init_thread) and returns the rank of this process in MPI_COMM_WORLD;
 * VKR_ERR_UNSUPPORTED without the MPI backend.  vkr_comm_free finalizes MPI. */
vkr_status vkr_comm_mpi_init(int *argc, char ***argv, vkr_comm **out);
/* n ranks in this process: out[0..n) (one per thread; each used by one thread only); free
 * each with vkr_comm_free. */
vkr_status vkr_comm_local_create(int n, vkr_comm **out);
void vkr_comm_free(vkr_comm *c);

int vkr_comm_rank(const vkr_comm *c);  /* 0 for NULL (a single process) */
int vkr_comm_size(const vkr_comm *c);  /* 1 for NULL */
const char *vkr_comm_backend(const vkr_comm *c); /* "mpi", "local" or "none" */
/* The host name of this rank ("" when unknown). */
const char *vkr_comm_host(const vkr_comm *c);
void vkr_comm_set_timeout(vkr_comm *c, double seconds);

/* Collectives: every rank calls them in the same order with the same counts. */
vkr_status vkr_comm_allreduce_f32(vkr_comm *c, float *buf, size_t n);   /* in place sum */
vkr_status vkr_comm_allreduce_f64(vkr_comm *c, double *buf, size_t n);  /* in place sum */
vkr_status vkr_comm_bcast(vkr_comm *c, void *buf, size_t bytes, int root);
vkr_status vkr_comm_barrier(vkr_comm *c);
/* A started sum (MPI_Iallreduce; the local backend sums at once): buf must stay untouched
 * until vkr_comm_wait returns.  At most VKR_COMM_MAX_PENDING pending per rank. */
#define VKR_COMM_MAX_PENDING 64
typedef struct vkr_comm_req vkr_comm_req;
vkr_status vkr_comm_iallreduce_f32(vkr_comm *c, float *buf, size_t n, vkr_comm_req **req);
vkr_status vkr_comm_wait(vkr_comm *c, vkr_comm_req *req);
/* Progress without blocking (MPI_Test): *done = 1 when req completed (then req is released as by
 * vkr_comm_wait).  Calling it while computing lets MPI move a started sum along. */
vkr_status vkr_comm_test(vkr_comm *c, vkr_comm_req *req, int *done);
/* This rank failed: the other ranks' collectives fail from now on (local backend; under MPI
 * the launcher ends the job when this process exits nonzero).  why: for their message. */
void vkr_comm_abort(vkr_comm *c, const char *why);

#ifdef __cplusplus
}
#endif
#endif
