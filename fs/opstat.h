/* opstat.h - counting FUSE operations and their errors (private to fs/).
 *
 * opstat_wrap() puts a counting wrapper in front of every operation of
 * a table; ops_i.h turns each fuse_reply_err() of the operations into
 * opstat_reply_err(), which counts a non-zero errno against the
 * operation the calling thread is serving. The counts are core's
 * (metrics.h), served by the metrics endpoint. */
#ifndef ALTINNFS_OPSTAT_H
#define ALTINNFS_OPSTAT_H

#include <fuse_lowlevel.h>

/* The counting table in front of ops (built once; ops must outlive it). */
const struct fuse_lowlevel_ops *opstat_wrap(const struct fuse_lowlevel_ops *ops);
/* fuse_reply_err, counted */
int opstat_reply_err(fuse_req_t req, int err);

#endif
