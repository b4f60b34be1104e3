/* cmd_generate.c — affix generate (being written). */
#include <stdio.h>

#include "cli.h"

int cmd_generate(int argc, char **argv) {
    (void)argc, (void)argv;
    fprintf(stderr, "affix: error: 'generate' is not implemented yet\n");
    return 1;
}
