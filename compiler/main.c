/* main.c — the lgen driver (placeholder until the front end lands). */
#include <stdio.h>

int main(void) {
    fprintf(stderr, "lgen: error: not built yet\n");
    return 2;
}
