/* dist.h — several processes as one: data-parallel `affix train` and `affix eval` over MPI
 * (tools/dist.c, the only file that knows MPI; built with it when the Makefile finds Open MPI, MPI=0
 * leaves it out and every call below is the one-process case).
 *
 *   mpirun -np K build/affix train ...   each rank takes its share of every global batch; the
 *                                        gradients are summed in rank order (train.h, TrainComm)
 *   mpirun -np K build/affix eval ...    the examples are dealt round-robin; rank 0 writes the files
 *
 * A rank that fails prints its error and stops every rank (dist_end): no rank is left waiting.
 */
#ifndef AFFIX_DIST_H
#define AFFIX_DIST_H

#include <stddef.h>

#include "err.h"
#include "real.h"
#include "train.h"

typedef struct Dist {
    int rank, size;  /* this process and their number (0 and 1 without mpirun) */
    int local_size;  /* the ranks on this machine */
    int mpi;         /* 1: MPI was initialised (dist_end finalises it) */
} Dist;

/* Starts MPI when the program was launched by mpirun (its environment says so), else the one-
 * process case. Returns -1 with e set when mpirun started a program built without MPI (K copies
 * would each train alone and overwrite one another's files). */
int dist_init(Dist *d, int *argc, char ***argv, afx_err *e);

/* The end of a command: rc != 0 on a rank of several stops every rank (MPI_Abort, after one line
 * naming the rank: the rank's own error line is above it); else MPI is finalised. Returns rc. */
int dist_end(Dist *d, int rc);

/* the sum over the ranks, the same on every rank (integers: exact) */
int dist_sum_long(const Dist *d, long *v, afx_err *e);
/* g[0..n) = the sum over the ranks, added in rank order ((g_0 + g_1) + g_2) ..., and *x likewise */
int dist_sum_reals(const Dist *d, real *g, size_t n, afx_err *e);
int dist_sum_double(const Dist *d, double *x, afx_err *e);
/* Rank 0 receives every rank's bytes, concatenated in rank order, in *all (malloc'd; the others get
 * NULL) and each rank's length in lens[0..size). */
int dist_gather(const Dist *d, const void *mine, size_t n, char **all, size_t *lens, afx_err *e);
/* every rank holds the same value (a kernel table, a model file's size...); else an error naming
 * the first rank that differs */
int dist_same(const Dist *d, const char *what, const char *value, afx_err *e);

/* 1 when this program was built with MPI (affix version says so) */
int dist_built_with_mpi(void);

/* the TrainComm of train_step_comm for these ranks (ctx = d) */
TrainComm dist_train_comm(const Dist *d);

#endif
