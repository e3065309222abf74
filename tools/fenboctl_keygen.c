/* fenboctl_keygen.c — `fenboctl keygen`: a CURVE key pair for the bus. */
#include "fenboctl.h"

#include <stdio.h>
#include <zmq.h>

int ctl_cmd_keygen(ctl_t *ctl, int argc, char **argv) {
    (void)ctl;
    (void)argv;
    if (argc != 0) {
        fprintf(stderr, "fenboctl: keygen takes no arguments\n");
        return 2;
    }
    char pub[41], sec[41];
    if (!zmq_has("curve") || zmq_curve_keypair(pub, sec) != 0) {
        fprintf(stderr, "fenboctl: keygen: this libzmq has no CURVE support\n");
        return 1;
    }
    /* INI lines, ready to paste: the public key goes to every peer. */
    printf("public_key = %s\nsecret_key = %s\n", pub, sec);
    return 0;
}
