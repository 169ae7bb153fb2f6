/* jsonpack: json_pack with its format checked against the types of its arguments, so that a wrong format fails a test instead of making jansson read a vararg never passed. */
#include "autoconfig.h"

#include "jsonpack.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "memory.h"

static bool strict;
static unsigned long failures;

void jsonpack_set_strict(bool value)
{
	strict = value;
}

unsigned long jsonpack_failures(void)
{
	return failures;
}

/* A format read the way jansson's pack reads it, one conversion at a time, against the
 * letters JSONPACK_TYPE gave the arguments. */
struct scanner {
	const char *at;            /* the next character of the format */
	const char *types;         /* the next argument's letter; '\0' after the last */
	size_t argument;           /* 1-based number of the next argument, for messages */
	char why[256];
};

/* The next token: jansson skips white space, ':' and ','. */
static char next_token(struct scanner *scanner)
{
	while (*scanner->at && strchr(" \t\n:,", *scanner->at))
		scanner->at++;
	return *scanner->at ? *scanner->at++ : '\0';
}

static char peek_token(struct scanner *scanner)
{
	const char *at = scanner->at;
	char token = next_token(scanner);
	scanner->at = at;
	return token;
}

static const char *type_name(char letter)
{
	switch (letter) {
	case 's': return "a string";
	case 'b': return "a bool";
	case 'i': return "an int";
	case 'I': return "a json_int_t";
	case 'f': return "a double";
	case 'z': return "a size_t";
	case 'o': return "a json_t *";
	case '\0': return "nothing (no argument left)";
	default: return "another type (cast it)";
	}
}

/* Takes the next argument for conversion, which accepts the letters of accepted. */
static bool take(struct scanner *scanner, const char *conversion, const char *accepted)
{
	char given = *scanner->types;
	if (!given || !strchr(accepted, given)) {
		snprintf(scanner->why, sizeof scanner->why, "'%s' takes %s as argument %zu, but it is %s", conversion,
			 type_name(accepted[0]), scanner->argument, type_name(given));
		return false;
	}
	scanner->types++;
	scanner->argument++;
	return true;
}

static bool fail(struct scanner *scanner, const char *format, ...) __attribute__((format(printf, 2, 3)));
static bool fail(struct scanner *scanner, const char *format, ...)
{
	va_list arguments;
	va_start(arguments, format);
	vsnprintf(scanner->why, sizeof scanner->why, format, arguments);
	va_end(arguments);
	return false;
}

/* After an 's': the string, then a length ('#' int, '%' size_t), then more strings
 * joined with '+', each with its own length. An optional string ("s?", "s*", values
 * only) takes no length and joins nothing. */
static bool string(struct scanner *scanner, bool may_be_optional)
{
	bool optional = false;
	if (may_be_optional && (peek_token(scanner) == '?' || peek_token(scanner) == '*')) {
		next_token(scanner);
		optional = true;
	}
	for (;;) {
		if (!take(scanner, "s", "s"))
			return false;
		char token = peek_token(scanner);
		if (optional) {
			if (token == '#' || token == '%' || token == '+')
				return fail(scanner, "'%c' cannot follow an optional string", token);
			return true;
		}
		if (token == '#' || token == '%') {
			next_token(scanner);
			if (!take(scanner, token == '#' ? "s#" : "s%", token == '#' ? "i" : "z"))
				return false;
		}
		if (peek_token(scanner) != '+')
			return true;
		next_token(scanner);
	}
}

static bool value(struct scanner *scanner, char token, int depth);

static bool object(struct scanner *scanner, int depth)
{
	for (;;) {
		char token = next_token(scanner);
		if (token == '}')
			return true;
		if (!token)
			return fail(scanner, "the format ends inside an object");
		if (token != 's')
			return fail(scanner, "an object key must be 's', not '%c'", token);
		if (!string(scanner, false) || !value(scanner, next_token(scanner), depth + 1))
			return false;
	}
}

static bool array(struct scanner *scanner, int depth)
{
	for (;;) {
		char token = next_token(scanner);
		if (token == ']')
			return true;
		if (!token)
			return fail(scanner, "the format ends inside an array");
		if (!value(scanner, token, depth + 1))
			return false;
	}
}

static bool value(struct scanner *scanner, char token, int depth)
{
	if (depth > 64)
		return fail(scanner, "the format nests deeper than 64");
	switch (token) {
	case '{': return object(scanner, depth);
	case '[': return array(scanner, depth);
	case 's': return string(scanner, true);
	case 'n': return true;
	case 'b': return take(scanner, "b", "bi");
	case 'i': return take(scanner, "i", "i");
	case 'I': return take(scanner, "I", "I");
	case 'f': return take(scanner, "f", "f");
	case 'o':
	case 'O':
		if (peek_token(scanner) == '?' || peek_token(scanner) == '*')
			next_token(scanner);
		return take(scanner, token == 'o' ? "o" : "O", "o");
	case '\0': return fail(scanner, "the format ends where a value is expected");
	default: return fail(scanner, "'%c' is not a conversion of json_pack", token);
	}
}

bool jsonpack_fits(const struct jsonpack_site *site, char *why, size_t why_size)
{
	struct scanner scanner = {.at = site->format, .types = site->types, .argument = 1};
	bool fit = value(&scanner, next_token(&scanner), 0);

	if (fit && next_token(&scanner))
		fit = fail(&scanner, "the format goes on after its value");
	if (fit && *scanner.types) {
		size_t given = strlen(site->types);
		fit = fail(&scanner, "%zu argument%s given, the format takes %zu", given, given == 1 ? "" : "s",
			   scanner.argument - 1);
	}
	snprintf(why, why_size, "%s", scanner.why);
	return fit;
}

/* The linker's bounds of the section where jsonpack calls register themselves; weak, so
 * that a program without any call links too. */
extern const struct jsonpack_site *const __start_pgha_jsonpack[] __attribute__((weak));
extern const struct jsonpack_site *const __stop_pgha_jsonpack[] __attribute__((weak));

const struct jsonpack_site *const *jsonpack_sites(size_t *count)
{
	*count = __start_pgha_jsonpack ? (size_t)(__stop_pgha_jsonpack - __start_pgha_jsonpack) : 0;
	return __start_pgha_jsonpack;
}

static void failed(const struct jsonpack_site *site, const char *why)
{
	failures++;
	log_error("%s:%d: json_pack(\"%s\"): %s", site->file, site->line, site->format, why);
	if (strict)
		abort();
}

json_t *jsonpack_checked(const struct jsonpack_site *site, ...)
{
	char why[256];
	json_error_t error;
	va_list arguments;

	if (!jsonpack_fits(site, why, sizeof why)) {
		failed(site, why);
		return NULL;
	}
	va_start(arguments, site);
	json_t *packed = json_vpack_ex(&error, 0, site->format, arguments);
	va_end(arguments);
	if (!packed)
		failed(site, error.text);
	return packed;
}

/* The length of the UTF-8 sequence at text that encodes one character, or 0 when it does
 * not (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF). */
static size_t character_length(const unsigned char *text)
{
	unsigned char lead = text[0];
	size_t length;
	unsigned long code;

	if (lead < 0x80)
		return 1;
	if (lead >= 0xc2 && lead <= 0xdf)
		length = 2, code = lead & 0x1f;
	else if (lead >= 0xe0 && lead <= 0xef)
		length = 3, code = lead & 0x0f;
	else if (lead >= 0xf0 && lead <= 0xf4)
		length = 4, code = lead & 0x07;
	else
		return 0;
	for (size_t i = 1; i < length; i++) {
		if ((text[i] & 0xc0) != 0x80)
			return 0;
		code = code << 6 | (text[i] & 0x3f);
	}
	if ((length == 3 && code < 0x800) || (length == 4 && (code < 0x10000 || code > 0x10ffff)) ||
	    (code >= 0xd800 && code <= 0xdfff))
		return 0;
	return length;
}

json_t *jsonpack_text(const char *text)
{
	if (!text)
		return json_string("");
	json_t *string = json_string(text);
	if (string)
		return string;
	/* each byte that starts no character becomes U+FFFD (3 bytes) */
	size_t size = strlen(text);
	char *repaired = xmalloc(size * 3 + 1), *out = repaired;
	for (const unsigned char *in = (const unsigned char *)text; *in;) {
		size_t length = character_length(in);
		if (length) {
			memcpy(out, in, length);
			out += length, in += length;
		} else {
			memcpy(out, "\xef\xbf\xbd", 3);
			out += 3, in++;
		}
	}
	*out = '\0';
	string = json_string(repaired);
	free(repaired);
	return string;
}
