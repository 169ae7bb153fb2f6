/* log: leveled messages to stderr or, under systemd, to the journal with priorities and cluster/member fields; secrets are scrubbed first. */
#ifndef PGHA_LOG_H
#define PGHA_LOG_H

#include <stdbool.h>
#include <stddef.h>

/* Ordered from most to least severe; the numbers are not syslog priorities. */
enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_NOTICE,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* The names accepted by daemon.log_level, indexed by enum log_level, NULL-terminated. */
extern const char *const log_level_names[];

/* Chooses the journal when stderr is the journal's stream (JOURNAL_STREAM), stderr otherwise. */
void log_init(const char *program);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
bool log_to_journal(void);

void log_message(enum log_level level, const char *cluster, const char *member, const char *format, ...)
	__attribute__((format(printf, 4, 5)));

#define log_error(...) log_message(LOG_LEVEL_ERROR, NULL, NULL, __VA_ARGS__)
#define log_warning(...) log_message(LOG_LEVEL_WARNING, NULL, NULL, __VA_ARGS__)
#define log_notice(...) log_message(LOG_LEVEL_NOTICE, NULL, NULL, __VA_ARGS__)
#define log_info(...) log_message(LOG_LEVEL_INFO, NULL, NULL, __VA_ARGS__)
#define log_debug(...) log_message(LOG_LEVEL_DEBUG, NULL, NULL, __VA_ARGS__)

/* Replaces secrets in text, in place: the value of password=... (conninfo, quoted or
 * not), the password of a URI's user:password@, and a "Bearer" token. */
void log_scrub(char *text);

#endif
