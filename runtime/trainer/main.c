/* main.c — lg_main, the whole generated program after its tables.
 *
 * The generated main() calls lg_main(argc, argv, &def). It parses the flags
 * (flags.c), answers --help / --version / --print_config, runs the
 * subcommand (loop.c) and turns the outcome into the exit status: 0 ok,
 * 1 runtime error, 2 usage error, 128+signal after SIGINT/SIGTERM. It is the
 * only place in the runtime that prints "prog: error: ..." (to stderr).
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

int lg_main(int argc, char **argv, const lg_model_def *def) {
    const char *prog = def && def->name ? def->name : "trainer";
    lg_error err = {LG_OK, ""};
    if (!def) {
        fprintf(stderr, "%s: internal error: no model definition\n", prog);
        return 1;
    }
    lg_tconfig cfg;
    int exit_now = 0;
    lg_status st = lg_tconfig_parse(&cfg, def, argc, argv, &exit_now, &err);
    if (st != LG_OK) {
        fprintf(stderr, "%s: error: %s\n", prog, err.msg);
        lg_tconfig_free(&cfg);
        return st == LG_ERR_ARG ? 2 : 1;
    }
    if (exit_now) {
        fflush(stdout);
        lg_tconfig_free(&cfg);
        return 0;
    }
    if (cfg.print_config) {
        char *text = lg_tconfig_dump(&cfg, def);
        if (text)
            printf("%s\n", text);
        free(text);
        lg_tconfig_free(&cfg);
        return 0;
    }
    int status = lg_run(def, &cfg, &err);
    fflush(stdout);
    if (status == 1 || status == 2)
        fprintf(stderr, "%s: error: %s\n", prog, err.msg);
    lg_tconfig_free(&cfg);
    return status;
}
