/* cmd_info.c — affix info (being written). */
#include <stdio.h>

#include "cli.h"

int cmd_info(int argc, char **argv) {
    (void)argc, (void)argv;
    fprintf(stderr, "affix: error: 'info' is not implemented yet\n");
    return 1;
}
