/* doctor.h - altinnfs --check: is this configuration ready to mount?
 *
 * Checks, without mounting, what an operator otherwise finds out from the
 * first real file: the state folder, the secret files, the token (file or
 * Maskinporten grant and exchange) and its scopes against what the
 * configured features need, each app's metadata and instance query, its
 * events, push (the subscription allowed, the webhook reached from the
 * platform), the Broker and Correspondence resources, and the local
 * addresses to listen on. One line per check, "ok", "WARN" or "FAIL"
 * with what to do. */
#ifndef ALTINNFS_DOCTOR_H
#define ALTINNFS_DOCTOR_H

#include <stdio.h>

struct config;

/* Runs every check for cfg (already loaded and checked by config_check),
 * writing one line per check to out; mountpoint may be NULL. 0 when none
 * failed, else the number of failures. Makes requests to the platform,
 * and with push on posts each app's subscription and deletes those it
 * made (docs/operations.md); altinn_global_init must have run. */
int doctor_run(const struct config *cfg, const char *mountpoint, FILE *out);

/* The line of a check that failed before doctor_run could (the config
 * itself): "FAIL  config: <why>". */
void doctor_fail(FILE *out, const char *what, const char *why);

#endif
