/* json_read.h — two rules every JSON reader of affix applies after cJSON, so that a file means to
 * affix what it means to Python (json.load), which wrote or reads the same files:
 *   - a repeated key in an object: the LAST value wins (Python's dict semantics; cJSON alone would
 *     hand back the first);
 *   - a \u0000 escape in a string is refused with the file and the byte: cJSON would decode it into
 *     a NUL that silently ends the C string (Python keeps the character).
 * Nothing here prints or keeps state.
 */
#ifndef AFFIX_JSON_READ_H
#define AFFIX_JSON_READ_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "err.h"

/* 0, or an error "NAME: byte N: ..." for the first \u0000 escape inside a string of buf[0..len) */
int afx_json_refuse_nul_escape(const char *buf, size_t len, const char *name, afx_err *e);

/* In every object of the tree, drops all but the last member of each repeated key (O(n log n) per
 * object). Returns the number of members dropped. */
size_t afx_json_last_wins(cJSON *node);

#endif
