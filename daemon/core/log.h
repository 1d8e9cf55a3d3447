/* log.h - the daemon's one logging helper.
 *
 * Lines go to stderr (foreground) or syslog (background), one event per
 * line, lowercase, no full stop, names in quotes:
 *     altinnfs: warning: query "ttd/soknad" failed: Connection refused
 * log_errno() logs and returns its error so callers can write
 *     return log_errno(r, "cannot open \"%s\"", path);
 * Never pass a token, key or assertion to these functions. */
#ifndef ALTINNFS_LOG_H
#define ALTINNFS_LOG_H

#include <stdbool.h>

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* use_syslog: the daemon has left the terminal. Otherwise stderr; when
 * that is the journal, lines carry "<N>" priority prefixes instead of
 * "altinnfs: " (see log.c). */
void log_setup(enum log_level max, bool use_syslog);
/* stderr is the journal: JOURNAL_STREAM names its device and inode */
bool log_stderr_is_journal(void);
bool log_enabled(enum log_level lvl);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* logs at error level with strerror(-r) appended; returns r (a -errno) */
int log_errno(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_enabled(LOG_LVL_DEBUG)) log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

#endif
