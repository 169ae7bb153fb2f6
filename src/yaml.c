/* yaml: a reader of the part of YAML that kubeconfig files are written in, into jansson values. */
#include "autoconfig.h"

#include "yaml.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memory.h"

/* Structure is read line by line: indentation decides where a mapping or sequence
 * ends, and a "- " item's content is re-read as a line indented to where it starts. */
struct line {
	int number;
	int indent;     /* spaces before text */
	char *text;     /* after the indentation, trailing blanks removed */
	bool ignorable; /* blank, a comment, a document marker or a directive */
};

struct reader {
	char *copy;
	struct line *lines;
	size_t count;
	size_t next; /* the first line not consumed */
	int depth;   /* of nested nodes, bounded so that no input exhausts the stack */
	char *why;
	size_t why_size;
	bool failed;
};

static json_t *parse_node(struct reader *reader, int parent_indent);

/* A kubeconfig nests six levels deep; far more is no kubeconfig. */
#define DEPTH_MAXIMUM 64

static void fail(struct reader *reader, int number, const char *format, ...) __attribute__((format(printf, 3, 4)));

/* Keeps the first error only: the later ones follow from it. */
static void fail(struct reader *reader, int number, const char *format, ...)
{
	va_list args;

	if (reader->failed)
		return;
	reader->failed = true;
	int used = snprintf(reader->why, reader->why_size, "line %d: ", number);
	if (used < 0 || (size_t)used >= reader->why_size)
		return;
	va_start(args, format);
	vsnprintf(reader->why + used, reader->why_size - (size_t)used, format, args);
	va_end(args);
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static void skip_blanks(const char **cursor)
{
	while (is_blank(**cursor))
		(*cursor)++;
}

static void split_lines(struct reader *reader, const char *text)
{
	bool content_seen = false, ended = false;
	size_t capacity = 1;

	if (strncmp(text, "\xEF\xBB\xBF", 3) == 0)
		text += 3;
	reader->copy = xstrdup(text);
	for (const char *c = reader->copy; *c; c++)
		capacity += *c == '\n';
	reader->lines = xcalloc(capacity, sizeof *reader->lines);
	char *start = reader->copy;
	for (int number = 1; start; number++) {
		char *end = strchr(start, '\n');
		if (end)
			*end = '\0';
		size_t length = strlen(start);
		while (length > 0 && (start[length - 1] == '\r' || is_blank(start[length - 1])))
			start[--length] = '\0';
		struct line *line = &reader->lines[reader->count++];
		line->number = number;
		while (start[line->indent] == ' ')
			line->indent++;
		line->text = start + line->indent;
		line->ignorable = ended || line->text[0] == '\0' || line->text[0] == '#';
		if (!ended && line->indent == 0) {
			if (strcmp(line->text, "...") == 0) {
				ended = line->ignorable = true;
			} else if (strncmp(line->text, "---", 3) == 0 && (line->text[3] == '\0' || is_blank(line->text[3]))) {
				if (content_seen)
					fail(reader, number, "a second document (---) is not supported");
				else if (line->text[3] && line->text[3 + strspn(line->text + 3, " \t")] != '#')
					fail(reader, number, "content on the --- line is not supported");
				line->ignorable = true;
			} else if (line->text[0] == '%' && !content_seen) {
				line->ignorable = true;
			}
		}
		content_seen |= !line->ignorable;
		start = end ? end + 1 : NULL;
	}
}

/* The next line that holds content, without consuming it; NULL at the end or after an error. */
static struct line *peek(struct reader *reader)
{
	while (reader->next < reader->count && reader->lines[reader->next].ignorable)
		reader->next++;
	if (reader->failed || reader->next == reader->count)
		return NULL;
	struct line *line = &reader->lines[reader->next];
	if (line->text[0] == '\t') {
		fail(reader, line->number, "a tab in the indentation (YAML indents with spaces)");
		return NULL;
	}
	return line;
}

static bool is_sequence_item(const char *text)
{
	return text[0] == '-' && (text[1] == ' ' || text[1] == '\0');
}

/* Just after the quote closing a scalar quoted with quote whose content goes on at
 * text, or NULL when the line ends first. A line break ends every escape, so each line
 * of a scalar over several lines is scanned on its own. */
static const char *closing_quote(const char *text, char quote)
{
	for (const char *c = text; *c; c++) {
		if (quote == '"' && *c == '\\' && c[1])
			c++;
		else if (*c == quote && quote == '\'' && c[1] == '\'')
			c++;
		else if (*c == quote)
			return c + 1;
	}
	return NULL;
}

/* Just after the closing quote of the quoted scalar that starts at text, or NULL when it
 * does not close on this line. */
static const char *quoted_end(const char *text)
{
	return closing_quote(text + 1, text[0]);
}

/* Where the plain scalar at text stops: at a comment, at ": " (in a block context a
 * mapping value the caller refuses), and in a flow collection at its punctuation. */
static size_t plain_stop(const char *text, bool flow)
{
	size_t length = 0;

	for (; text[length]; length++) {
		char c = text[length], after = text[length + 1];
		if (c == '#' && length > 0 && is_blank(text[length - 1]))
			break;
		if (flow && strchr(",[]{}", c))
			break;
		if (c == ':' && (after == '\0' || is_blank(after) || (flow && strchr(",[]{}", after))))
			break;
	}
	return length;
}

static size_t trimmed(const char *text, size_t length)
{
	while (length > 0 && is_blank(text[length - 1]))
		length--;
	return length;
}

static void put_utf8(char **out, uint32_t code)
{
	char *o = *out;

	if (code < 0x80) {
		*o++ = (char)code;
	} else if (code < 0x800) {
		*o++ = (char)(0xC0 | code >> 6);
		*o++ = (char)(0x80 | (code & 0x3F));
	} else if (code < 0x10000) {
		*o++ = (char)(0xE0 | code >> 12);
		*o++ = (char)(0x80 | (code >> 6 & 0x3F));
		*o++ = (char)(0x80 | (code & 0x3F));
	} else {
		*o++ = (char)(0xF0 | code >> 18);
		*o++ = (char)(0x80 | (code >> 12 & 0x3F));
		*o++ = (char)(0x80 | (code >> 6 & 0x3F));
		*o++ = (char)(0x80 | (code & 0x3F));
	}
	*out = o;
}

/* Decodes the escape after a backslash at *cursor (which it moves past), into *out. */
static const char *unescape(const char **cursor, char **out)
{
	static const char simple_from[] = "abtnvfre \"/\\\t";
	static const char simple_to[] = "\a\b\t\n\v\f\r\x1b \"/\\\t";
	const char *c = *cursor;
	const char *position = strchr(simple_from, *c);
	int digits = 0;
	uint32_t code = 0;

	if (*c && position) {
		*(*out)++ = simple_to[position - simple_from];
		*cursor = c + 1;
		return NULL;
	}
	switch (*c) {
	case 'N':
		code = 0x85;
		break;
	case '_':
		code = 0xA0;
		break;
	case 'L':
		code = 0x2028;
		break;
	case 'P':
		code = 0x2029;
		break;
	case 'x':
		digits = 2;
		break;
	case 'u':
		digits = 4;
		break;
	case 'U':
		digits = 8;
		break;
	case '0':
		return "a NUL character (\\0) is not supported";
	default:
		return "an unknown escape in a double-quoted scalar";
	}
	for (int i = 1; i <= digits; i++) {
		char d = c[i];
		int value = d >= '0' && d <= '9' ? d - '0' : d >= 'a' && d <= 'f' ? d - 'a' + 10 : d >= 'A' && d <= 'F' ? d - 'A' + 10 : -1;
		if (value < 0)
			return "an escape with too few hexadecimal digits";
		code = code << 4 | (uint32_t)value;
	}
	if (code == 0 || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
		return "an escape that is not a character";
	put_utf8(out, code);
	*cursor = c + 1 + digits;
	return NULL;
}

/* The content of the quoted scalar text..end (quotes included): escapes decoded and line
 * breaks folded as YAML does (one break is a space, each empty line a newline). NULL with
 * *error set on a bad escape. */
static char *unquote(const char *text, const char *end, const char **error)
{
	char quote = text[0];
	char *result = xmalloc(2 * (size_t)(end - text) + 1), *out = result;
	const char *c = text + 1, *last = end - 1;

	while (c < last) {
		if (is_blank(*c)) {
			const char *after = c;
			skip_blanks(&after);
			if (*after == '\n')
				c = after; /* blanks before a line break are not content */
			else
				*out++ = *c++;
		} else if (*c == '\n') {
			int breaks = 0;
			while (*c == '\n') {
				breaks++;
				c++;
				skip_blanks(&c);
			}
			for (int i = 1; i < breaks; i++)
				*out++ = '\n';
			if (breaks == 1)
				*out++ = ' ';
		} else if (quote == '\'' && *c == '\'') {
			*out++ = '\'';
			c += 2;
		} else if (quote == '"' && *c == '\\' && c[1] == '\n') {
			c += 2; /* an escaped line break joins the lines */
			skip_blanks(&c);
		} else if (quote == '"' && *c == '\\') {
			c++;
			*error = unescape(&c, &out);
			if (*error) {
				free(result);
				return NULL;
			}
		} else {
			*out++ = *c++;
		}
	}
	*out = '\0';
	return result;
}

static json_t *plain_value(const char *text, size_t length)
{
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
	static const char *const trues[] = {"true", "True", "TRUE"};
	static const char *const falses[] = {"false", "False", "FALSE"};

	for (size_t i = 0; i < sizeof nulls / sizeof *nulls; i++)
		if (strlen(nulls[i]) == length && strncmp(text, nulls[i], length) == 0)
			return json_null();
	for (size_t i = 0; i < sizeof trues / sizeof *trues; i++) {
		if (strlen(trues[i]) == length && strncmp(text, trues[i], length) == 0)
			return json_true();
		if (strlen(falses[i]) == length && strncmp(text, falses[i], length) == 0)
			return json_false();
	}
	return json_stringn(text, length);
}

/* Refuses what starts YAML features outside the subset; true when c starts one. */
static bool refuse_unsupported(struct reader *reader, int number, char c)
{
	switch (c) {
	case '&':
		fail(reader, number, "anchors (&) are not supported");
		return true;
	case '*':
		fail(reader, number, "aliases (*) are not supported");
		return true;
	case '!':
		fail(reader, number, "tags (!) are not supported");
		return true;
	case '|':
	case '>':
		fail(reader, number, "block scalars (| and >) are not supported: write the value on one line, quoted if need be");
		return true;
	case '?':
		fail(reader, number, "complex keys (?) are not supported");
		return true;
	case '@':
	case '`':
		fail(reader, number, "a plain scalar cannot start with %c: quote it", c);
		return true;
	default:
		return false;
	}
}

static json_t *quoted_string(struct reader *reader, int number, const char *text, const char *end)
{
	const char *error = NULL;
	char *content = unquote(text, end, &error);
	json_t *value = NULL;

	if (!content)
		fail(reader, number, "%s", error);
	else if (!(value = json_string(content)))
		fail(reader, number, "a scalar that is not valid UTF-8");
	free(content);
	return value;
}

static json_t *parse_flow(struct reader *reader, int number, const char **cursor);

/* One entry of a flow collection: a scalar, or a collection nested in it. Keys stay text. */
static json_t *flow_entry(struct reader *reader, int number, const char **cursor, bool key)
{
	const char *c = *cursor;

	if (*c == '"' || *c == '\'') {
		const char *end = quoted_end(c);
		if (!end) {
			fail(reader, number, "a quoted scalar in a flow collection must end on its line");
			return NULL;
		}
		*cursor = end;
		return quoted_string(reader, number, c, end);
	}
	if ((*c == '[' || *c == '{') && !key)
		return parse_flow(reader, number, cursor);
	if (refuse_unsupported(reader, number, *c))
		return NULL;
	if (*c == '[' || *c == '{') {
		fail(reader, number, "a key must be a scalar");
		return NULL;
	}
	size_t length = trimmed(c, plain_stop(c, true));
	*cursor = c + length;
	json_t *value = key ? json_stringn(c, length) : plain_value(c, length);
	if (!value)
		fail(reader, number, "a scalar that is not valid UTF-8");
	return value;
}

/* A flow collection ({...} or [...]) that starts and ends on one line. */
static json_t *parse_flow(struct reader *reader, int number, const char **cursor)
{
	char open = **cursor, close = open == '[' ? ']' : '}';
	json_t *collection = open == '[' ? json_array() : json_object();
	const char *c = *cursor + 1;

	if (++reader->depth > DEPTH_MAXIMUM) {
		fail(reader, number, "nested more than %d levels deep", DEPTH_MAXIMUM);
		json_decref(collection);
		return NULL;
	}
	for (;;) {
		skip_blanks(&c);
		if (*c == close) {
			*cursor = c + 1;
			reader->depth--;
			return collection;
		}
		if (*c == '\0' || *c == '#') {
			fail(reader, number, "a flow collection (%c...%c) must end on the line it starts on", open, close);
			break;
		}
		if (*c == ',') {
			fail(reader, number, "an empty entry in a flow collection");
			break;
		}
		json_t *entry = flow_entry(reader, number, &c, open == '{');
		if (!entry)
			break;
		skip_blanks(&c);
		if (open == '[') {
			json_array_append_new(collection, entry);
		} else {
			const char *key = json_string_value(entry);
			json_t *value = NULL;
			if (*c == ':') {
				c++;
				skip_blanks(&c);
				if (*c != ',' && *c != close)
					value = flow_entry(reader, number, &c, false);
				else
					value = json_null();
			} else {
				value = json_null();
			}
			if (value && json_object_get(collection, key))
				fail(reader, number, "the key \"%s\" appears twice", key);
			if (!value || reader->failed) {
				json_decref(value);
				json_decref(entry);
				break;
			}
			json_object_set_new(collection, key, value);
			json_decref(entry);
			skip_blanks(&c);
		}
		if (*c == ',')
			c++;
		else if (*c != close) {
			fail(reader, number, "expected , or %c in a flow collection", close);
			break;
		}
	}
	json_decref(collection);
	return NULL;
}

/* A quoted scalar starting at text on the current line, continued on the next lines
 * until its closing quote. */
static json_t *parse_quoted(struct reader *reader, const char *text)
{
	size_t first = reader->next, last = first;
	char *joined = NULL;
	const char *end = quoted_end(text);

	if (!end) {
		/* find the closing line first, then join once: a quote that never closes in a
		 * large file must not cost a copy per line */
		while (!end && ++last < reader->count)
			end = closing_quote(reader->lines[last].text, text[0]);
		if (!end) {
			fail(reader, reader->lines[first].number, "a quoted scalar that never ends");
			return NULL;
		}
		size_t size = strlen(text) + 1, offset = (size_t)(end - reader->lines[last].text);
		for (size_t index = first + 1; index <= last; index++)
			size += strlen(reader->lines[index].text) + 1;
		joined = xmalloc(size);
		char *out = stpcpy(joined, text);
		for (size_t index = first + 1; index <= last; index++) {
			*out++ = '\n';
			if (index == last)
				offset += (size_t)(out - joined);
			out = stpcpy(out, reader->lines[index].text);
		}
		end = joined + offset;
		text = joined;
	}
	json_t *value = quoted_string(reader, reader->lines[first].number, text, end);
	const char *rest = end;
	skip_blanks(&rest);
	if (value && *rest && *rest != '#') {
		fail(reader, reader->lines[last].number, "unexpected text after a quoted scalar");
		json_decref(value);
		value = NULL;
	}
	free(joined);
	reader->next = last + 1;
	return value;
}

/* A plain scalar starting at text on the current line; it continues on the following
 * lines indented more than parent_indent (a line break folds to a space). */
static json_t *parse_plain(struct reader *reader, const char *text, int parent_indent)
{
	struct line *line = &reader->lines[reader->next];
	size_t stop = plain_stop(text, false);
	size_t length = trimmed(text, stop), capacity = length + 1;
	char *folded = xmalloc(capacity);
	bool comment = text[stop] == '#';
	size_t breaks = 0;

	memcpy(folded, text, length);
	if (text[stop] == ':')
		fail(reader, line->number, "a value cannot hold \": \" unless quoted");
	reader->next++;
	for (size_t index = reader->next; !comment && !reader->failed && index < reader->count; index++) {
		struct line *next = &reader->lines[index];
		if (next->text[0] == '\0') {
			breaks++;
			continue;
		}
		if (next->ignorable || next->indent <= parent_indent)
			break;
		stop = plain_stop(next->text, false);
		if (next->text[stop] == ':')
			fail(reader, next->number, "a value cannot hold \": \" unless quoted (or is this line indented too far?)");
		comment = next->text[stop] == '#';
		size_t more = trimmed(next->text, stop);
		/* one line break is a space; each empty line between is a newline */
		size_t separator = breaks ? breaks : 1;
		if (length + separator + more + 1 > capacity) {
			capacity = 2 * (length + separator + more + 1);
			folded = xreallocarray(folded, capacity, 1);
		}
		memset(folded + length, breaks ? '\n' : ' ', separator);
		memcpy(folded + length + separator, next->text, more);
		length += separator + more;
		breaks = 0;
		reader->next = index + 1;
	}
	json_t *value = reader->failed ? NULL : plain_value(folded, length);
	if (!value)
		fail(reader, line->number, "a scalar that is not valid UTF-8");
	free(folded);
	return value;
}

/* A scalar or a flow collection starting at text on the current line, which it consumes
 * with any continuation lines. */
static json_t *parse_value(struct reader *reader, const char *text, int parent_indent)
{
	struct line *line = &reader->lines[reader->next];

	if (*text == '"' || *text == '\'')
		return parse_quoted(reader, text);
	if (*text == '[' || *text == '{') {
		const char *cursor = text;
		json_t *value = parse_flow(reader, line->number, &cursor);
		skip_blanks(&cursor);
		if (value && *cursor && *cursor != '#') {
			fail(reader, line->number, "unexpected text after a flow collection");
			json_decref(value);
			value = NULL;
		}
		reader->next++;
		return value;
	}
	if (refuse_unsupported(reader, line->number, *text))
		return NULL;
	return parse_plain(reader, text, parent_indent);
}

/* The colon that ends a block mapping's key on this line, or NULL when the line is no
 * "key: value". */
static const char *key_colon(const char *text)
{
	const char *c = text;

	if (*text == '"' || *text == '\'') {
		c = quoted_end(text);
		if (!c)
			return NULL;
		skip_blanks(&c);
		return *c == ':' && (c[1] == '\0' || is_blank(c[1])) ? c : NULL;
	}
	if (*text == '[' || *text == '{')
		return NULL;
	size_t stop = plain_stop(text, false);
	return text[stop] == ':' ? text + stop : NULL;
}

static char *parse_key(struct reader *reader, const struct line *line, const char *colon)
{
	const char *text = line->text;

	if (*text == '"' || *text == '\'') {
		const char *error = NULL;
		char *key = unquote(text, quoted_end(text), &error);
		if (!key)
			fail(reader, line->number, "%s", error);
		return key;
	}
	if (refuse_unsupported(reader, line->number, *text))
		return NULL;
	size_t length = trimmed(text, (size_t)(colon - text));
	if (length == 0) {
		fail(reader, line->number, "a key is missing before the colon");
		return NULL;
	}
	return xasprintf("%.*s", (int)length, text);
}

static json_t *parse_sequence(struct reader *reader, int indent);

/* The "key: value" lines indented by exactly indent. */
static json_t *parse_mapping(struct reader *reader, int indent)
{
	json_t *mapping = json_object();
	struct line *line;

	while ((line = peek(reader)) && line->indent == indent) {
		if (is_sequence_item(line->text)) {
			fail(reader, line->number, "a sequence item (-) where a key was expected");
			break;
		}
		const char *colon = key_colon(line->text);
		if (!colon) {
			fail(reader, line->number, "expected \"key: value\"");
			break;
		}
		char *key = parse_key(reader, line, colon);
		if (!key)
			break;
		const char *rest = colon + 1;
		json_t *value;
		skip_blanks(&rest);
		if (*rest == '\0' || *rest == '#') {
			reader->next++;
			struct line *next = peek(reader);
			/* kubectl writes a mapping's sequence at the key's own indentation */
			if (next && next->indent == indent && is_sequence_item(next->text))
				value = parse_sequence(reader, indent);
			else
				value = parse_node(reader, indent);
		} else {
			value = parse_value(reader, rest, indent);
		}
		if (value && json_object_get(mapping, key))
			fail(reader, line->number, "the key \"%s\" appears twice", key);
		else if (value && json_object_set_new(mapping, key, json_incref(value)) < 0)
			fail(reader, line->number, "a key that is not valid UTF-8");
		json_decref(value);
		free(key);
		if (!value || reader->failed)
			break;
	}
	if (line && line->indent > indent)
		fail(reader, line->number, "unexpected indentation");
	if (reader->failed) {
		json_decref(mapping);
		return NULL;
	}
	return mapping;
}

/* The "- item" lines indented by exactly indent. */
static json_t *parse_sequence(struct reader *reader, int indent)
{
	json_t *sequence = json_array();
	struct line *line;

	while ((line = peek(reader)) && line->indent == indent && is_sequence_item(line->text)) {
		int offset = 1;
		while (line->text[offset] == ' ')
			offset++;
		if (line->text[offset] == '\0' || line->text[offset] == '#') {
			reader->next++;
		} else {
			/* the item's content is read as a line of its own, indented to where it starts,
			 * so that "- name: x" and the "  cluster: y" below it are one mapping */
			line->indent += offset;
			line->text += offset;
		}
		json_t *item = parse_node(reader, indent);
		if (!item)
			break;
		json_array_append_new(sequence, item);
	}
	if (line && line->indent > indent)
		fail(reader, line->number, "unexpected indentation");
	if (reader->failed) {
		json_decref(sequence);
		return NULL;
	}
	return sequence;
}

/* The node on the next lines indented more than parent_indent; null when there is none. */
static json_t *parse_node(struct reader *reader, int parent_indent)
{
	struct line *line = peek(reader);
	json_t *node;

	if (!line || line->indent <= parent_indent)
		return reader->failed ? NULL : json_null();
	if (++reader->depth > DEPTH_MAXIMUM) {
		fail(reader, line->number, "nested more than %d levels deep", DEPTH_MAXIMUM);
		return NULL;
	}
	if (is_sequence_item(line->text))
		node = parse_sequence(reader, line->indent);
	else if (key_colon(line->text))
		node = parse_mapping(reader, line->indent);
	else
		node = parse_value(reader, line->text, parent_indent);
	reader->depth--;
	return node;
}

json_t *yaml_parse(const char *text, char *why, size_t why_size)
{
	struct reader reader = {.why = why, .why_size = why_size};
	json_t *document = NULL;

	split_lines(&reader, text);
	if (!reader.failed)
		document = parse_node(&reader, -1);
	struct line *line = peek(&reader);
	if (line)
		fail(&reader, line->number, "unexpected text after the document (is it indented too little?)");
	if (reader.failed) {
		json_decref(document);
		document = NULL;
	}
	free(reader.lines);
	free(reader.copy);
	return document;
}
