/* dist.c — the ranks of an MPI run as one trainer / evaluator (dist.h). Built with -DAFFIX_MPI and
 * mpicc's flags when the Makefile finds Open MPI; without it every function is the one-process case.
 *
 * The gradient sum is a chain, not MPI_Allreduce: MPI may add the ranks' values in any grouping
 * (a tree for some sizes, a ring for others), so its result can change with the number of ranks and
 * the message size. Here rank r receives S_{r-1} = g_0 + ... + g_{r-1} from rank r-1, adds its own
 * g_r and passes S_r on, a chunk at a time (the chunks pipeline along the chain); the last rank
 * broadcasts the total. That is the order train_step adds micro-batches in, so K ranks of batch b
 * give the bytes of one process with --batch b --grad-accum K. Cost: each rank sends and receives
 * about 2 x the gradient bytes per step, like a ring allreduce, with K-1 hops of latency.
 */
#include "dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef AFFIX_MPI
#include <limits.h>
#include <mpi.h>
#endif

/* the launcher's environment: Open MPI, then PMIx / PMI (MPICH, Slurm) */
static int launched_size(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE"};
    for (int i = 0; i < 3; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return atoi(v) > 0 ? atoi(v) : 1;
    }
    return 0;
}

/* one rank: the bytes themselves */
static int gather_one(const void *mine, size_t n, char **all, size_t *lens, afx_err *e) {
    *all = malloc(n ? n : 1);
    if (!*all) return afx_fail(e, "out of memory");
    if (n) memcpy(*all, mine, n);
    lens[0] = n;
    return 0;
}

#ifndef AFFIX_MPI

int dist_built_with_mpi(void) { return 0; }

int dist_gather(const Dist *d, const void *mine, size_t n, char **all, size_t *lens, afx_err *e) {
    (void)d;
    return gather_one(mine, n, all, lens, e);
}

int dist_init(Dist *d, int *argc, char ***argv, afx_err *e) {
    (void)argc, (void)argv;
    *d = (Dist){.rank = 0, .size = 1, .local_size = 1};
    if (launched_size() > 1)
        return afx_fail(e, "this affix was built without MPI but was started as one of %d ranks (each would train alone "
                           "and overwrite the others' files): rebuild with libopenmpi-dev installed (make MPI=1)",
                        launched_size());
    return 0;
}
int dist_end(Dist *d, int rc) { (void)d; return rc; }
int dist_sum_long(const Dist *d, long *v, afx_err *e) { (void)d, (void)v, (void)e; return 0; }
int dist_sum_reals(const Dist *d, real *g, size_t n, afx_err *e) { (void)d, (void)g, (void)n, (void)e; return 0; }
int dist_sum_double(const Dist *d, double *x, afx_err *e) { (void)d, (void)x, (void)e; return 0; }
int dist_same(const Dist *d, const char *what, const char *value, afx_err *e) { (void)d, (void)what, (void)value, (void)e; return 0; }

#else

int dist_built_with_mpi(void) { return 1; }

static int mpi_fail(afx_err *e, const Dist *d, int code, const char *what) {
    char s[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(code, s, &len);
    return afx_fail(e, "rank %d of %d: %s: %s", d->rank, d->size, what, s);
}

int dist_init(Dist *d, int *argc, char ***argv, afx_err *e) {
    *d = (Dist){.rank = 0, .size = 1, .local_size = 1};
    if (!launched_size()) return 0; // not started by mpirun: one process, MPI untouched
    int rc = MPI_Init(argc, argv);
    if (rc != MPI_SUCCESS) return afx_fail(e, "MPI_Init failed (code %d)", rc);
    d->mpi = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN); // errors come back as codes
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
    MPI_Comm local;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local) == MPI_SUCCESS) {
        MPI_Comm_size(local, &d->local_size);
        MPI_Comm_free(&local);
    }
    return 0;
}

int dist_end(Dist *d, int rc) {
    if (!d->mpi) return rc;
    if (rc != 0 && d->size > 1) {
        fprintf(stderr, "affix: error: rank %d of %d failed (its error is above); stopping every rank\n", d->rank, d->size);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, rc);
    }
    MPI_Finalize();
    d->mpi = 0;
    return rc;
}

int dist_sum_long(const Dist *d, long *v, afx_err *e) {
    if (d->size == 1) return 0;
    long in = *v;
    int rc = MPI_Allreduce(&in, v, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(e, d, rc, "summing the target counts");
}

int dist_sum_double(const Dist *d, double *x, afx_err *e) {
    if (d->size == 1) return 0;
    double *all = malloc(sizeof(double) * (size_t)d->size);
    if (!all) return afx_fail(e, "out of memory");
    int rc = MPI_Allgather(x, 1, MPI_DOUBLE, all, 1, MPI_DOUBLE, MPI_COMM_WORLD);
    if (rc == MPI_SUCCESS) {
        double s = 0;
        for (int r = 0; r < d->size; r++) s += all[r]; // rank order, the same on every rank
        *x = s;
    }
    free(all);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(e, d, rc, "summing the losses");
}

#define CHAIN_CHUNK ((size_t)1 << 20) /* values per message: 4 MB of floats */

int dist_sum_reals(const Dist *d, real *g, size_t n, afx_err *e) {
    if (d->size == 1 || n == 0) return 0;
    MPI_Datatype T = sizeof(real) == sizeof(double) ? MPI_DOUBLE : MPI_FLOAT;
    size_t ch = n < CHAIN_CHUNK ? n : CHAIN_CHUNK;
    real *in = malloc(ch * sizeof(real));
    if (!in) return afx_fail(e, "out of memory for the gradient exchange (%zu values)", ch);
    int rc = MPI_SUCCESS;
    for (size_t off = 0; off < n && rc == MPI_SUCCESS; off += ch) {
        int c = (int)(n - off < ch ? n - off : ch);
        if (d->rank > 0) { // S_r = S_{r-1} + g_r
            rc = MPI_Recv(in, c, T, d->rank - 1, 17, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            real *x = g + off;
#pragma omp parallel for schedule(static) if (c > 65536)
            for (int j = 0; j < c; j++) x[j] = in[j] + x[j];
        }
        if (rc == MPI_SUCCESS && d->rank < d->size - 1) rc = MPI_Send(g + off, c, T, d->rank + 1, 17, MPI_COMM_WORLD);
    }
    for (size_t off = 0; off < n && rc == MPI_SUCCESS; off += ch) // the total, from the last rank to all
        rc = MPI_Bcast(g + off, (int)(n - off < ch ? n - off : ch), T, d->size - 1, MPI_COMM_WORLD);
    free(in);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(e, d, rc, "summing the gradients");
}

int dist_gather(const Dist *d, const void *mine, size_t n, char **all, size_t *lens, afx_err *e) {
    if (d->size == 1) return gather_one(mine, n, all, lens, e);
    *all = NULL;
    if (n > INT_MAX) return afx_fail(e, "rank %d of %d: %zu bytes to gather, more than one message holds", d->rank, d->size, n);
    int len = (int)n, *ilen = NULL, *disp = NULL;
    if (d->rank == 0) {
        ilen = malloc(sizeof(int) * (size_t)d->size);
        disp = malloc(sizeof(int) * (size_t)d->size);
        if (!ilen || !disp) { free(ilen); free(disp); return afx_fail(e, "out of memory"); }
    }
    int rc = MPI_Gather(&len, 1, MPI_INT, ilen, 1, MPI_INT, 0, MPI_COMM_WORLD);
    long long total = 0;
    if (rc == MPI_SUCCESS && d->rank == 0) {
        for (int r = 0; r < d->size; r++) disp[r] = (int)total, lens[r] = (size_t)ilen[r], total += ilen[r];
        if (total > INT_MAX) { free(ilen); free(disp); return afx_fail(e, "%lld bytes to gather on rank 0, more than one message holds", total); }
        *all = malloc((size_t)total + 1);
        if (!*all) { free(ilen); free(disp); return afx_fail(e, "out of memory for %lld gathered bytes", total); }
    }
    if (rc == MPI_SUCCESS) rc = MPI_Gatherv(mine, len, MPI_BYTE, *all, ilen, disp, MPI_BYTE, 0, MPI_COMM_WORLD);
    free(ilen);
    free(disp);
    if (rc != MPI_SUCCESS) { free(*all); *all = NULL; return mpi_fail(e, d, rc, "gathering the results"); }
    return 0;
}

int dist_same(const Dist *d, const char *what, const char *value, afx_err *e) {
    if (d->size == 1) return 0;
    enum { W = 256 };
    char mine[W] = "", *all = malloc((size_t)W * (size_t)d->size);
    if (!all) return afx_fail(e, "out of memory");
    snprintf(mine, W, "%s", value);
    int rc = MPI_Allgather(mine, W, MPI_CHAR, all, W, MPI_CHAR, MPI_COMM_WORLD), bad = -1;
    for (int r = 1; rc == MPI_SUCCESS && r < d->size && bad < 0; r++)
        if (strcmp(all, all + (size_t)r * W)) bad = r;
    if (bad >= 0) {
        afx_fail(e, "%s differs between the ranks: rank 0 has '%.100s', rank %d has '%.100s' (every rank must run the "
                    "same program on the same files)", what, all, bad, all + (size_t)bad * W);
        free(all);
        return -1;
    }
    free(all);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(e, d, rc, "comparing the ranks");
}

#endif

/* ---- train.h's TrainComm on these ranks ---------------------------------------------------------- */

static int comm_count(void *ctx, long *targets, afx_err *e) { return dist_sum_long(ctx, targets, e); }

static int comm_grads(void *ctx, real *g, size_t n, double *loss_sum, afx_err *e) {
    return dist_sum_reals(ctx, g, n, e) || dist_sum_double(ctx, loss_sum, e) ? -1 : 0;
}

TrainComm dist_train_comm(const Dist *d) { return (TrainComm){(void *)d, comm_count, comm_grads}; }
