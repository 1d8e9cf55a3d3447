/* log.c - one line per event to stderr or syslog (see log.h).
 *
 * A single write(2) per line keeps lines from different threads whole.
 * When stderr is the journal (systemd sets JOURNAL_STREAM to its
 * device:inode), each line starts with its syslog priority as "<N>",
 * which journald takes as the line's priority (sd-daemon(3)), and drops
 * the "altinnfs: " the journal already shows as the identifier. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

static enum log_level log_max = LOG_LVL_INFO;
static bool log_syslog;
static bool log_journal; /* stderr is the journal's stream */

static const char *const level_names[] = { "error", "warning", "info", "debug" };
static const int syslog_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

bool log_stderr_is_journal(void)
{
	const char *v = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!v || sscanf(v, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_setup(enum log_level max, bool use_syslog)
{
	log_max = max;
	log_syslog = use_syslog;
	log_journal = !use_syslog && log_stderr_is_journal();
	if (use_syslog)
		openlog("altinnfs", LOG_PID, LOG_DAEMON);
}

bool log_enabled(enum log_level lvl)
{
	return lvl <= log_max;
}

static void log_vline(enum log_level lvl, const char *fmt, va_list ap, int err)
{
	char line[2048];
	int n;

	if (!log_enabled(lvl))
		return;
	if (log_journal)
		n = snprintf(line, sizeof(line), "<%d>%s: ", syslog_prio[lvl], level_names[lvl]);
	else
		n = snprintf(line, sizeof(line), "altinnfs: %s: ", level_names[lvl]);
	n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (n >= (int)sizeof(line) - 64)
		n = (int)sizeof(line) - 64;
	if (err)
		n += snprintf(line + n, sizeof(line) - (size_t)n, ": %s", strerror(err));
	if (log_syslog) {
		syslog(syslog_prio[lvl], "%s", line + strlen("altinnfs: "));
		return;
	}
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* nowhere left to report it */
	}
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline(lvl, fmt, ap, 0);
	va_end(ap);
}

int log_errno(int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline(LOG_LVL_ERROR, fmt, ap, r < 0 ? -r : r);
	va_end(ap);
	return r;
}
