/* log: leveled messages to stderr or, under systemd, to the journal with priorities and cluster/member fields; secrets are scrubbed first. */
#include "autoconfig.h"

#include "log.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

const char *const log_level_names[] = {"error", "warning", "notice", "info", "debug", NULL};

static const int syslog_priority[] = {LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG};

static struct {
	const char *program;
	enum log_level level;
	bool journal;
} logger = {"pgha", LOG_LEVEL_INFO, false};

/* systemd sets JOURNAL_STREAM to "device:inode" of the stream it connected to stderr;
 * only when stderr is still that stream do we own the journal connection. */
static bool stderr_is_journal(void)
{
	const char *stream = getenv("JOURNAL_STREAM");
	unsigned long long device, inode;
	struct stat status;

	if (!stream || sscanf(stream, "%llu:%llu", &device, &inode) != 2)
		return false;
	if (fstat(STDERR_FILENO, &status) < 0)
		return false;
	return (unsigned long long)status.st_dev == device && (unsigned long long)status.st_ino == inode;
}

void log_init(const char *program)
{
	logger.program = program;
	logger.journal = stderr_is_journal();
}

void log_set_level(enum log_level level)
{
	logger.level = level;
}

enum log_level log_get_level(void)
{
	return logger.level;
}

bool log_to_journal(void)
{
	return logger.journal;
}

/* Overwrites text[start, end) with "***", shifting the rest of the string. */
static size_t mask(char *text, size_t start, size_t end)
{
	static const char stars[] = "***";
	size_t tail = strlen(text + end) + 1;

	if (end - start < sizeof stars - 1)
		return end; /* never grow the buffer: a secret this short is masked by truncation below */
	memcpy(text + start, stars, sizeof stars - 1);
	memmove(text + start + sizeof stars - 1, text + end, tail);
	return start + sizeof stars - 1;
}

/* The end of a conninfo value starting at position: a quoted value honours
 * backslash escapes, an unquoted one stops at whitespace. */
static size_t conninfo_value_end(const char *text, size_t position)
{
	if (text[position] == '\'') {
		position++;
		while (text[position] && text[position] != '\'') {
			if (text[position] == '\\' && text[position + 1])
				position++;
			position++;
		}
		return text[position] ? position + 1 : position;
	}
	while (text[position] && !isspace((unsigned char)text[position]))
		position++;
	return position;
}

void log_scrub(char *text)
{
	size_t position = 0;

	while (text[position]) {
		if (strncasecmp(text + position, "password", 8) == 0) {
			size_t value = position + 8;
			while (text[value] == ' ')
				value++;
			if (text[value] == '=' || text[value] == ':') {
				value++;
				while (text[value] == ' ')
					value++;
				size_t end = conninfo_value_end(text, value);
				if (end > value && end - value < 3)
					memset(text + value, '*', end - value);
				position = end > value ? mask(text, value, end) : value;
				continue;
			}
		} else if (strncasecmp(text + position, "bearer ", 7) == 0) {
			size_t value = position + 7;
			size_t end = value;
			while (text[end] && !isspace((unsigned char)text[end]) && text[end] != '"')
				end++;
			if (end > value && end - value < 3)
				memset(text + value, '*', end - value);
			position = end > value ? mask(text, value, end) : value;
			continue;
		} else if (strncmp(text + position, "://", 3) == 0) {
			/* scheme://user:password@host: mask what lies between ':' and '@' */
			size_t start = position + 3, colon = 0, end = start;
			while (text[end] && text[end] != '@' && text[end] != '/' && !isspace((unsigned char)text[end])) {
				if (text[end] == ':' && !colon)
					colon = end;
				end++;
			}
			if (text[end] == '@' && colon) {
				if (end - colon - 1 < 3)
					memset(text + colon + 1, '*', end - colon - 1);
				position = mask(text, colon + 1, end);
				continue;
			}
			position = start;
			continue;
		}
		position++;
	}
}

static void write_stderr(enum log_level level, const char *cluster, const char *member, const char *text)
{
	static const char *const label[] = {"ERROR", "WARNING", "NOTICE", "INFO", "DEBUG"};
	struct timespec now;
	struct tm utc;
	char stamp[32];

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &utc);
	strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &utc);
	fprintf(stderr, "%s.%03ld UTC %s[%ld] %s: ", stamp, now.tv_nsec / 1000000, logger.program,
		(long)getpid(), label[level]);
	if (member)
		fprintf(stderr, "[%s] ", member);
	else if (cluster)
		fprintf(stderr, "[%s] ", cluster);
	fprintf(stderr, "%s\n", text);
	fflush(stderr);
}

static void write_journal(enum log_level level, const char *cluster, const char *member, const char *text)
{
	char *fields[5] = {0};
	struct iovec vector[5];
	int count = 0;
	bool complete = true;

	complete &= asprintf(&fields[count++], "MESSAGE=%s%s%s%s", member ? "[" : "", member ? member : "",
			     member ? "] " : "", text) >= 0;
	complete &= asprintf(&fields[count++], "PRIORITY=%d", syslog_priority[level]) >= 0;
	complete &= asprintf(&fields[count++], "SYSLOG_IDENTIFIER=%s", logger.program) >= 0;
	if (cluster)
		complete &= asprintf(&fields[count++], "PGHA_CLUSTER=%s", cluster) >= 0;
	if (member)
		complete &= asprintf(&fields[count++], "PGHA_MEMBER=%s", member) >= 0;
	if (complete) {
		for (int i = 0; i < count; i++)
			vector[i] = (struct iovec){.iov_base = fields[i], .iov_len = strlen(fields[i])};
	}
	if (!complete || sd_journal_sendv(vector, count) < 0)
		write_stderr(level, cluster, member, text);
	/* after a failed asprintf the pointers are undefined: leak rather than free garbage */
	if (complete)
		for (int i = 0; i < count; i++)
			free(fields[i]);
}

void log_message(enum log_level level, const char *cluster, const char *member, const char *format, ...)
{
	char text[4096];
	va_list args;

	if (level > logger.level)
		return;
	va_start(args, format);
	vsnprintf(text, sizeof text, format, args);
	va_end(args);
	log_scrub(text);
	if (logger.journal)
		write_journal(level, cluster, member, text);
	else
		write_stderr(level, cluster, member, text);
}
