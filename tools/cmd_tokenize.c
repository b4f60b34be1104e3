/* cmd_tokenize.c — affix tokenize (being written). */
#include <stdio.h>

#include "cli.h"

int cmd_tokenize(int argc, char **argv) {
    (void)argc, (void)argv;
    fprintf(stderr, "affix: error: 'tokenize' is not implemented yet\n");
    return 1;
}
