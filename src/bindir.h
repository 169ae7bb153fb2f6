/* bindir: where PostgreSQL's server programs are, and which major version they are. */
#ifndef PGHA_BINDIR_H
#define PGHA_BINDIR_H

#include <stdbool.h>
#include <stddef.h>

/* Finds the directory of PostgreSQL's server programs: configured when it is not NULL or
 * empty (it must hold postgres; setting names it in the reason, "platform.local.bindir"),
 * else pg_config --bindir (/usr/bin or /usr/local/bin: no PATH search), else the newest
 * /usr/lib/postgresql/VERSION/bin holding postgres. False with the reason in why. */
bool bindir_find(const char *configured, const char *setting, char *bindir, size_t bindir_size, char *why,
		 size_t why_size);

/* bindir/name: a new string. */
char *bindir_program(const char *bindir, const char *name);

/* The major version of the postgres in bindir (15 for "postgres (PostgreSQL) 15.5", 9 for
 * 9.6.24), or 0 when it cannot be told. */
int bindir_major_version(const char *bindir);

/* The major version a "PostgreSQL x.y..." version string names, as above; 0 for nonsense. */
int bindir_parse_major_version(const char *version_output);

#endif
