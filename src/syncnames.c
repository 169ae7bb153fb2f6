/* syncnames: render, parse and compare synchronous_standby_names exactly as PostgreSQL 15 reads it. */
#include "autoconfig.h"

#include "syncnames.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "memory.h"

/* The tokens of PostgreSQL's syncrep_scanner.l; the parser below follows syncrep_gram.y. */
enum token_kind {
	TOKEN_END,
	TOKEN_NAME,   /* an unquoted identifier, a quoted name or "*" */
	TOKEN_NUMBER, /* digits: the number before "(", or else a name */
	TOKEN_ANY,
	TOKEN_FIRST,
	TOKEN_COMMA,
	TOKEN_OPEN,
	TOKEN_CLOSE,
	TOKEN_JUNK,         /* any other single character */
	TOKEN_UNTERMINATED, /* a quote that the text never closes */
};

struct token {
	enum token_kind kind;
	const char *start; /* in the text, to quote it in messages */
	size_t length;
	char *value; /* TOKEN_NAME and TOKEN_NUMBER: the name as PostgreSQL keeps it; owned */
};

struct parser {
	const char *position; /* where the next token starts */
	struct token current;
	bool current_follows_identifier; /* it starts right where an unquoted identifier ends */
	bool read_a_token;               /* before current, the text held a token */
	struct sync_spec *spec;
	char *why;
	size_t why_size;
};

void sync_spec_free(struct sync_spec *spec)
{
	if (!spec)
		return;
	for (size_t i = 0; i < spec->count; i++)
		free(spec->names[i]);
	free(spec->names);
	*spec = (struct sync_spec){.method = SYNC_METHOD_OFF};
}

/* pg_strcasecmp() folds only ASCII letters in the locales PostgreSQL servers run with
 * (UTF-8 and C); folding more here would call names equal that the server tells apart. */
static unsigned char fold_ascii(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

static int compare_ignoring_ascii_case(const char *a, const char *b)
{
	const unsigned char *left = (const unsigned char *)a, *right = (const unsigned char *)b;

	for (;; left++, right++) {
		unsigned char l = fold_ascii(*left), r = fold_ascii(*right);
		if (l != r || l == '\0')
			return l - r;
	}
}

static bool is_method_on(int method)
{
	return method == SYNC_METHOD_ANY || method == SYNC_METHOD_FIRST;
}

char *syncnames_render(int method, int number, const char *const *names, size_t count)
{
	if (!is_method_on(method) || count == 0)
		return xstrdup("");

	int clamped = number < 1 ? 1 : (size_t)number > count ? (int)count : number;
	char *prefix = xasprintf("%s %d (", method == SYNC_METHOD_ANY ? "ANY" : "FIRST", clamped);
	size_t size = strlen(prefix) + sizeof ")";

	for (size_t i = 0; i < count; i++) {
		size += strlen(names[i]) + sizeof "\"\"" - 1 + (i > 0 ? sizeof ", " - 1 : 0);
		for (const char *c = names[i]; *c; c++)
			size += *c == '"';
	}

	char *text = xmalloc(size), *end = text;

	end = stpcpy(end, prefix);
	free(prefix);
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			end = stpcpy(end, ", ");
		/* Always quoted: unquoted, PostgreSQL refuses '-' and the words ANY and FIRST. */
		*end++ = '"';
		for (const char *c = names[i]; *c; c++) {
			if (*c == '"')
				*end++ = '"';
			*end++ = *c;
		}
		*end++ = '"';
	}
	stpcpy(end, ")");
	return text;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* The scanner counts every byte with the high bit set as a letter, whatever the encoding. */
static bool is_identifier_start(char c)
{
	unsigned char byte = (unsigned char)c;
	return (byte >= 'a' && byte <= 'z') || (byte >= 'A' && byte <= 'Z') || byte == '_' || byte >= 0x80;
}

static bool is_identifier_continue(char c)
{
	return is_identifier_start(c) || is_digit(c) || c == '$';
}

static bool is_keyword(const char *start, size_t length, const char *keyword)
{
	if (length != strlen(keyword))
		return false;
	for (size_t i = 0; i < length; i++)
		if (fold_ascii((unsigned char)start[i]) != (unsigned char)keyword[i])
			return false;
	return true;
}

static char *copy_span(const char *start, size_t length)
{
	char *copy = xmalloc(length + 1);

	memcpy(copy, start, length);
	copy[length] = '\0';
	return copy;
}

/* A quoted name: everything up to the closing quote, where "" stands for one quote. */
static void scan_quoted(struct parser *parser, struct token *token)
{
	const char *c = token->start + 1;
	char *value = xmalloc(strlen(c) + 1), *end = value;

	for (;; c++) {
		if (*c == '\0') {
			free(value);
			token->kind = TOKEN_UNTERMINATED;
			break;
		}
		if (*c == '"' && c[1] == '"') {
			*end++ = *c++;
			continue;
		}
		if (*c == '"') {
			*end = '\0';
			token->kind = TOKEN_NAME;
			token->value = value;
			c++;
			break;
		}
		*end++ = *c;
	}
	token->length = (size_t)(c - token->start);
	parser->position = c;
}

/* Replaces the current token with the next one. */
static void advance(struct parser *parser)
{
	struct token *token = &parser->current;
	bool after_identifier = token->kind == TOKEN_NAME && token->start && is_identifier_start(token->start[0]);
	const char *previous_end = token->start ? token->start + token->length : NULL;
	const char *c = parser->position;

	parser->read_a_token = token->start != NULL;
	free(token->value);
	while (is_space(*c))
		c++;
	*token = (struct token){.start = c, .length = 1};
	parser->current_follows_identifier = after_identifier && c == previous_end;

	if (*c == '\0') {
		token->kind = TOKEN_END;
		token->length = 0;
	} else if (*c == '"') {
		scan_quoted(parser, token);
		return;
	} else if (is_identifier_start(*c)) {
		while (is_identifier_continue(c[token->length]))
			token->length++;
		/* A keyword only when the whole identifier is the word: "anyone" is a name. */
		if (is_keyword(c, token->length, "any"))
			token->kind = TOKEN_ANY;
		else if (is_keyword(c, token->length, "first"))
			token->kind = TOKEN_FIRST;
		else {
			/* The scanner keeps the case as written; matching ignores it instead. */
			token->kind = TOKEN_NAME;
			token->value = copy_span(c, token->length);
		}
	} else if (is_digit(*c)) {
		while (is_digit(c[token->length]))
			token->length++;
		token->kind = TOKEN_NUMBER;
		token->value = copy_span(c, token->length);
	} else if (*c == '*') {
		token->kind = TOKEN_NAME;
		token->value = xstrdup("*");
	} else if (*c == ',') {
		token->kind = TOKEN_COMMA;
	} else if (*c == '(') {
		token->kind = TOKEN_OPEN;
	} else if (*c == ')') {
		token->kind = TOKEN_CLOSE;
	} else {
		token->kind = TOKEN_JUNK;
	}
	parser->position = c + token->length;
}

static void set_why(struct parser *parser, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void set_why(struct parser *parser, const char *format, ...)
{
	va_list args;

	if (!parser->why || parser->why_size == 0)
		return;
	va_start(args, format);
	vsnprintf(parser->why, parser->why_size, format, args);
	va_end(args);
}

/* Reports the current token as PostgreSQL does; returns false so callers can return it. */
static bool syntax_error(struct parser *parser)
{
	const struct token *token = &parser->current;

	if (token->kind == TOKEN_UNTERMINATED)
		set_why(parser, "unterminated quoted identifier at end of input");
	else if (token->kind == TOKEN_END && !parser->read_a_token)
		set_why(parser, "syntax error at end of input (only the empty string turns synchronous replication "
				"off, not one made of whitespace)");
	else if (token->kind == TOKEN_END)
		set_why(parser, "syntax error at end of input");
	else if (token->kind == TOKEN_JUNK && parser->current_follows_identifier)
		set_why(parser, "syntax error at or near \"%.*s\" (a name with characters other than letters, digits, "
				"'_' and '$' must be in double quotes)", (int)token->length, token->start);
	else
		set_why(parser, "syntax error at or near \"%.*s\"", (int)token->length, token->start);
	return false;
}

static bool expect(struct parser *parser, enum token_kind kind)
{
	if (parser->current.kind != kind)
		return syntax_error(parser);
	if (kind != TOKEN_END)
		advance(parser);
	return true;
}

/* Moves the current token's value, a name, to the end of the list. */
static void take_name(struct parser *parser, char *name)
{
	struct sync_spec *spec = parser->spec;

	spec->names = xreallocarray(spec->names, spec->count + 1, sizeof *spec->names);
	spec->names[spec->count++] = name;
}

/* The rest of a list after its first name: ", name" again and again. */
static bool parse_list_rest(struct parser *parser)
{
	while (parser->current.kind == TOKEN_COMMA) {
		advance(parser);
		if (parser->current.kind != TOKEN_NAME && parser->current.kind != TOKEN_NUMBER)
			return syntax_error(parser);
		take_name(parser, parser->current.value);
		parser->current.value = NULL;
		advance(parser);
	}
	return true;
}

/* A list of one name or more; digits are a name here ("1, 2" lists two standbys). */
static bool parse_list(struct parser *parser)
{
	if (parser->current.kind != TOKEN_NAME && parser->current.kind != TOKEN_NUMBER)
		return syntax_error(parser);
	take_name(parser, parser->current.value);
	parser->current.value = NULL;
	advance(parser);
	return parse_list_rest(parser);
}

/* PostgreSQL converts the number with atoi(), which is (int)strtol(): on 64-bit Linux,
 * saturated at LONG_MAX, then cut to its low 32 bits. So "99999999999 (a)" asks for
 * 1215752191 standbys and "2147483648 (a)" for a negative number, which is refused. */
static int postgres_atoi(const char *digits)
{
	const uint64_t long_max = INT64_MAX;
	uint64_t value = 0;

	for (const char *c = digits; *c; c++) {
		unsigned digit = (unsigned)(*c - '0');
		value = value > (long_max - digit) / 10 ? long_max : value * 10 + digit;
	}

	uint32_t low = (uint32_t)value;
	/* low as a two's complement int, without the implementation-defined conversion */
	return low <= INT32_MAX ? (int)low : (int)(low - UINT32_C(0x80000000)) + INT32_MIN;
}

/* "(a, b)" after the number, up to the end of the text. */
static bool parse_counted_list(struct parser *parser, const char *digits)
{
	parser->spec->number = postgres_atoi(digits);
	return expect(parser, TOKEN_OPEN) && parse_list(parser) && expect(parser, TOKEN_CLOSE) &&
	       expect(parser, TOKEN_END);
}

static bool parse_value(struct parser *parser)
{
	struct sync_spec *spec = parser->spec;
	char *digits;
	bool parsed;

	switch (parser->current.kind) {
	case TOKEN_ANY:
	case TOKEN_FIRST:
		spec->method = parser->current.kind == TOKEN_ANY ? SYNC_METHOD_ANY : SYNC_METHOD_FIRST;
		advance(parser);
		if (parser->current.kind != TOKEN_NUMBER)
			return syntax_error(parser);
		digits = parser->current.value;
		parser->current.value = NULL;
		advance(parser);
		parsed = parse_counted_list(parser, digits);
		free(digits);
		return parsed;
	case TOKEN_NUMBER:
		spec->method = SYNC_METHOD_FIRST;
		digits = parser->current.value;
		parser->current.value = NULL;
		advance(parser);
		/* Only the next token tells a number ("2 (a, b)") from a name ("2, a"). */
		if (parser->current.kind == TOKEN_OPEN) {
			parsed = parse_counted_list(parser, digits);
			free(digits);
			return parsed;
		}
		spec->number = 1;
		take_name(parser, digits);
		return parse_list_rest(parser) && expect(parser, TOKEN_END);
	case TOKEN_NAME:
		spec->method = SYNC_METHOD_FIRST;
		spec->number = 1;
		return parse_list(parser) && expect(parser, TOKEN_END);
	default:
		return syntax_error(parser);
	}
}

bool syncnames_parse(const char *text, struct sync_spec *out, char *why, size_t why_size)
{
	struct parser parser = {.position = text, .spec = out, .why = why, .why_size = why_size};
	bool parsed;

	*out = (struct sync_spec){.method = SYNC_METHOD_OFF};
	/* check_synchronous_standby_names skips the parser for the empty string only. */
	if (text[0] == '\0')
		return true;
	advance(&parser);
	parsed = parse_value(&parser);
	free(parser.current.value);
	if (parsed && out->number <= 0) {
		set_why(&parser, "number of synchronous standbys (%d) must be greater than zero", out->number);
		parsed = false;
	}
	if (!parsed)
		sync_spec_free(out);
	return parsed;
}

bool syncnames_name_matches(const char *listed, const char *application_name)
{
	/* syncrep.c compares "*" exactly: it is the wildcard whether or not it was quoted. */
	return strcmp(listed, "*") == 0 || compare_ignoring_ascii_case(listed, application_name) == 0;
}

static int compare_names(const void *a, const void *b)
{
	return compare_ignoring_ascii_case(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted by the same rule as equality, so equal lists sort alike whatever their case. */
static char **sorted_names(const struct sync_spec *spec)
{
	char **names = xreallocarray(NULL, spec->count, sizeof *names);

	memcpy(names, spec->names, spec->count * sizeof *names);
	qsort(names, spec->count, sizeof *names, compare_names);
	return names;
}

bool syncnames_equal(const struct sync_spec *a, const struct sync_spec *b)
{
	/* Off as syncnames_render sees it: no method, or nothing to wait for. */
	bool a_on = is_method_on(a->method) && a->count > 0, b_on = is_method_on(b->method) && b->count > 0;

	if (!a_on || !b_on)
		return a_on == b_on;
	if (a->method != b->method || a->number != b->number || a->count != b->count)
		return false;

	char **left = a->method == SYNC_METHOD_ANY ? sorted_names(a) : a->names;
	char **right = a->method == SYNC_METHOD_ANY ? sorted_names(b) : b->names;
	bool equal = true;

	for (size_t i = 0; i < a->count && equal; i++)
		equal = compare_ignoring_ascii_case(left[i], right[i]) == 0;
	if (a->method == SYNC_METHOD_ANY) {
		free(left);
		free(right);
	}
	return equal;
}
