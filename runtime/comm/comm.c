/* Communicators (include/vkrun_comm.h): the dispatch and the local backend (ranks as threads of
 * one process, sums through shared memory, in rank order so that results do not depend on
 * thread timing). */
#include "comm/comm_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT 300.0

int vkr_comm_rank(const vkr_comm *c) { return c ? c->rank : 0; }
int vkr_comm_size(const vkr_comm *c) { return c ? c->size : 1; }
const char *vkr_comm_host(const vkr_comm *c) { return c ? c->host : ""; }
const char *vkr_comm_backend(const vkr_comm *c) {
    return !c ? "none" : c->kind == VKR__COMM_MPI ? "mpi" : "local";
}
void vkr_comm_set_timeout(vkr_comm *c, double seconds) {
    if (c && seconds > 0) c->timeout = seconds;
}

static void set_host(vkr_comm *c) {
    if (gethostname(c->host, sizeof c->host - 1)) c->host[0] = 0;
    c->host[sizeof c->host - 1] = 0;
}

vkr_status vkr_comm_mpi_init(int *argc, char ***argv, vkr_comm **out) {
    *out = NULL;
    if (!vkr_comm_mpi_available())
        return vkr_fail(VKR_ERR_UNSUPPORTED, "this vkrun was built without MPI (configure with Open MPI installed: "
                                             "apt-get install openmpi-bin libopenmpi-dev, then cmake -DVKRUN_MPI=ON)");
    vkr_comm *c = calloc(1, sizeof *c);
    if (!c) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    c->kind = VKR__COMM_MPI;
    c->timeout = DEFAULT_TIMEOUT;
    set_host(c);
    vkr_status s = vkr__mpi_init(argc, argv, c);
    if (s) {
        free(c);
        return s;
    }
    *out = c;
    return VKR_OK;
}

vkr_status vkr_comm_local_create(int n, vkr_comm **out) {
    if (n < 1 || n > 1024) return vkr_fail(VKR_ERR_INVALID, "local communicator: %d ranks (1 to 1024)", n);
    vkr__local_group *g = calloc(1, sizeof *g);
    void **bufs = calloc((size_t)n, sizeof *bufs);
    vkr_comm *c = calloc((size_t)n, sizeof *c);
    if (!g || !bufs || !c) {
        free(g);
        free(bufs);
        free(c);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->n = g->refs = n;
    g->bufs = bufs;
    for (int r = 0; r < n; r++) { /* each rank its own allocation, freed by vkr_comm_free */
        vkr_comm *x = r == 0 ? c : calloc(1, sizeof *x);
        if (!x) {
            for (int k = 1; k < r; k++) free(out[k]);
            free(c);
            free(bufs);
            free(g);
            return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
        }
        x->kind = VKR__COMM_LOCAL;
        x->rank = r;
        x->size = n;
        x->timeout = DEFAULT_TIMEOUT;
        x->grp = g;
        set_host(x);
        out[r] = x;
    }
    return VKR_OK;
}

void vkr_comm_free(vkr_comm *c) {
    if (!c) return;
    if (c->kind == VKR__COMM_MPI) vkr__mpi_finalize(c);
    if (c->kind == VKR__COMM_LOCAL) {
        vkr__local_group *g = c->grp;
        pthread_mutex_lock(&g->mu);
        int last = --g->refs == 0;
        pthread_mutex_unlock(&g->mu);
        if (last) {
            pthread_mutex_destroy(&g->mu);
            pthread_cond_destroy(&g->cv);
            free(g->bufs);
            free(g->scratch);
            free(g);
        }
    }
    free(c);
}

void vkr_comm_abort(vkr_comm *c, const char *why) {
    if (!c || c->kind != VKR__COMM_LOCAL) return;
    vkr__local_group *g = c->grp;
    pthread_mutex_lock(&g->mu);
    if (!g->aborted) {
        g->aborted = 1;
        snprintf(g->why, sizeof g->why, "rank %d failed: %s", c->rank, why ? why : "");
    }
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* Waits (mutex held) until every rank arrived; fails on abort or timeout. */
static vkr_status local_barrier_locked(vkr_comm *c, const char *what) {
    vkr__local_group *g = c->grp;
    if (g->aborted) return vkr_fail(VKR_ERR_IO, "%s: %s", what, g->why);
    unsigned long gen = g->gen;
    if (++g->arrived == g->n) {
        g->arrived = 0;
        g->gen++;
        pthread_cond_broadcast(&g->cv);
        return VKR_OK;
    }
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += (time_t)c->timeout;
    while (g->gen == gen && !g->aborted) {
        if (pthread_cond_timedwait(&g->cv, &g->mu, &dl) == ETIMEDOUT && g->gen == gen) {
            g->aborted = 1;
            snprintf(g->why, sizeof g->why, "rank %d waited %.0f s for the other ranks in %s (a rank died or hangs)",
                     c->rank, c->timeout, what);
            pthread_cond_broadcast(&g->cv);
        }
    }
    if (g->gen == gen) return vkr_fail(VKR_ERR_IO, "%s: %s", what, g->why);
    return VKR_OK;
}

static vkr_status local_barrier(vkr_comm *c, const char *what) {
    pthread_mutex_lock(&c->grp->mu);
    vkr_status s = local_barrier_locked(c, what);
    pthread_mutex_unlock(&c->grp->mu);
    return s;
}

/* Sum (op 0: float, 1: double) or broadcast (op 2, from root) of every rank's buf. */
static vkr_status local_collective(vkr_comm *c, void *buf, size_t n, int op, int root, const char *what) {
    vkr__local_group *g = c->grp;
    size_t esz = op == 0 ? sizeof(float) : op == 1 ? sizeof(double) : 1;
    vkr_status s;
    pthread_mutex_lock(&g->mu);
    g->bufs[c->rank] = buf;
    s = local_barrier_locked(c, what);
    if (!s && c->rank == 0 && op < 2) { /* the sum, in rank order */
        if (g->scratch_bytes < n * esz) {
            void *p = realloc(g->scratch, n * esz);
            if (p) {
                g->scratch = p;
                g->scratch_bytes = n * esz;
            }
        }
        if (g->scratch_bytes >= n * esz) {
            if (op == 0) {
                float *d = g->scratch;
                memcpy(d, g->bufs[0], n * esz);
                for (int r = 1; r < g->n; r++)
                    for (size_t i = 0; i < n; i++) d[i] += ((const float *)g->bufs[r])[i];
            } else {
                double *d = g->scratch;
                memcpy(d, g->bufs[0], n * esz);
                for (int r = 1; r < g->n; r++)
                    for (size_t i = 0; i < n; i++) d[i] += ((const double *)g->bufs[r])[i];
            }
        } else {
            g->aborted = 1;
            snprintf(g->why, sizeof g->why, "out of host memory for a sum of %zu values", n);
        }
    }
    if (!s) s = local_barrier_locked(c, what);
    if (!s && op == 2 && c->rank != root) memcpy(buf, g->bufs[root], n);
    if (!s && op < 2 && c->rank != 0) memcpy(buf, g->scratch, n * esz);
    if (!s) s = local_barrier_locked(c, what); /* rank 0 overwrites its buffer / scratch only after this */
    if (!s && op < 2 && c->rank == 0) memcpy(buf, g->scratch, n * esz);
    pthread_mutex_unlock(&g->mu);
    return s;
}

vkr_status vkr_comm_allreduce_f32(vkr_comm *c, float *buf, size_t n) {
    if (!c || c->size == 1) return VKR_OK;
    if (c->kind == VKR__COMM_MPI) return vkr__mpi_allreduce(c, buf, n, 0);
    return local_collective(c, buf, n, 0, 0, "all-reduce");
}

vkr_status vkr_comm_allreduce_f64(vkr_comm *c, double *buf, size_t n) {
    if (!c || c->size == 1) return VKR_OK;
    if (c->kind == VKR__COMM_MPI) return vkr__mpi_allreduce(c, buf, n, 1);
    return local_collective(c, buf, n, 1, 0, "all-reduce");
}

vkr_status vkr_comm_bcast(vkr_comm *c, void *buf, size_t bytes, int root) {
    if (!c || c->size == 1) return VKR_OK;
    if (root < 0 || root >= c->size) return vkr_fail(VKR_ERR_INVALID, "broadcast: root %d of %d ranks", root, c->size);
    if (c->kind == VKR__COMM_MPI) return vkr__mpi_bcast(c, buf, bytes, root);
    return local_collective(c, buf, bytes, 2, root, "broadcast");
}

vkr_status vkr_comm_barrier(vkr_comm *c) {
    if (!c || c->size == 1) return VKR_OK;
    if (c->kind == VKR__COMM_MPI) return vkr__mpi_barrier(c);
    return local_barrier(c, "barrier");
}

vkr_status vkr_comm_iallreduce_f32(vkr_comm *c, float *buf, size_t n, vkr_comm_req **req) {
    *req = NULL;
    if (!c || c->size == 1) return VKR_OK;
    if (c->kind != VKR__COMM_MPI) return vkr_comm_allreduce_f32(c, buf, n); /* done at once */
    for (int i = 0; i < VKR_COMM_MAX_PENDING; i++)
        if (!c->reqs[i].used) {
            vkr_status s = vkr__mpi_iallreduce(c, buf, n, &c->reqs[i]);
            if (!s) *req = &c->reqs[i];
            return s;
        }
    return vkr_fail(VKR_ERR_INVALID, "all-reduce: more than %d pending", VKR_COMM_MAX_PENDING);
}

vkr_status vkr_comm_test(vkr_comm *c, vkr_comm_req *req, int *done) {
    *done = 1;
    if (!c || !req) return VKR_OK;
    return vkr__mpi_test(c, req, done);
}

vkr_status vkr_comm_wait(vkr_comm *c, vkr_comm_req *req) {
    if (!c || !req) return VKR_OK;
    return vkr__mpi_wait(c, req);
}

#ifndef VKRUN_HAVE_MPI
/* Without MPI: vkr_comm_mpi_init fails before any of these could be reached. */
int vkr_comm_mpi_available(void) { return 0; }
const char *vkr_comm_mpi_version(void) { return ""; }
vkr_status vkr__mpi_init(int *argc, char ***argv, vkr_comm *c) {
    (void)argc, (void)argv, (void)c;
    return VKR_ERR_UNSUPPORTED;
}
void vkr__mpi_finalize(vkr_comm *c) { (void)c; }
vkr_status vkr__mpi_allreduce(vkr_comm *c, void *buf, size_t n, int f64) {
    (void)c, (void)buf, (void)n, (void)f64;
    return VKR_ERR_UNSUPPORTED;
}
vkr_status vkr__mpi_iallreduce(vkr_comm *c, float *buf, size_t n, vkr_comm_req *r) {
    (void)c, (void)buf, (void)n, (void)r;
    return VKR_ERR_UNSUPPORTED;
}
vkr_status vkr__mpi_wait(vkr_comm *c, vkr_comm_req *r) {
    (void)c, (void)r;
    return VKR_ERR_UNSUPPORTED;
}
vkr_status vkr__mpi_test(vkr_comm *c, vkr_comm_req *r, int *done) {
    (void)c, (void)r, (void)done;
    return VKR_ERR_UNSUPPORTED;
}
vkr_status vkr__mpi_bcast(vkr_comm *c, void *buf, size_t bytes, int root) {
    (void)c, (void)buf, (void)bytes, (void)root;
    return VKR_ERR_UNSUPPORTED;
}
vkr_status vkr__mpi_barrier(vkr_comm *c) {
    (void)c;
    return VKR_ERR_UNSUPPORTED;
}
#endif
