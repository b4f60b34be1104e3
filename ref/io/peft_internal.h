/* peft_internal.h — what peft_save.c and peft_load.c share: PEFT's names for affix's methods and
 * modules, the map from an adapter's parameter table to PEFT's file names and shapes (one map, used
 * by both directions), and the projection prefix's table. Not part of the public API (peft.h).
 */
#ifndef AFFIX_PEFT_INTERNAL_H
#define AFFIX_PEFT_INTERNAL_H

#include <stddef.h>

#include "peft.h"

extern const char *const PEFT_TYPES[METHOD_COUNT];    /* peft_type per method; NULL for full */
extern const char *const PEFT_LIN_MODULES[LIN_COUNT]; /* q_proj ... down_proj, in LIN_* order */

/* the prefix layers of a spec on c, ascending; returns their number */
int peft_spec_layers(const MethodSpec *s, const LlamaConfig *c, int *out);

/* File name and shape of parameter k of ad (method m). */
void peft_file_key(const Adapter *ad, int m, int k, char *key, size_t n, size_t shape[4], int *ndim);

/* The table (P, n*2*KV) that a projection prefix's MLP produces from values (parameter order). */
int peft_prefix_table(const MethodSpec *spec, const LlamaConfig *c, const real *values, real *table, afx_err *e);

#endif
