/* help: wfctl's --help texts. */
#ifndef WFCTL_HELP_H
#define WFCTL_HELP_H

#include <stdbool.h>
#include <stdio.h>

/* The help of CMD (NULL: every command, as help2man reads it). */
void wfctl_usage(FILE *f, const char *cmd);

#endif
