/* jsonpack: json_pack with its format checked against the types of its arguments, so that a wrong format fails a test instead of making jansson read a vararg never passed. */
#ifndef PGHA_JSONPACK_H
#define PGHA_JSONPACK_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* jsonpack(format, argument...) is json_pack(format, argument...) with a check first:
 * the compiler names the type of every argument (_Generic), and the format is read as
 * jansson reads it, comparing what each conversion takes (s, s#, s%, s+, b, i, I, f, o,
 * O, with ? and *) with the argument given for it, and the count. jansson itself cannot:
 * it reads its varargs blindly. Only when all fits does jansson see the arguments, so a
 * mismatch is never undefined behaviour: it is logged with the caller's file and line
 * and returns NULL (the references o would have stolen are leaked, never freed twice),
 * as does a value jansson refuses (a NULL string, invalid UTF-8). The tests and the
 * fuzz targets call jsonpack_set_strict(true), which makes both abort instead.
 *
 * Each call also leaves its format and its arguments' types where the linker gathers
 * them (the section pgha_jsonpack), so that a test checks every call of the program
 * with jsonpack_fits, whether or not any test runs it (tests/unit/test-jsonpack.c).
 *
 * Arguments: at least one, at most 64; the format is a string literal; strings are
 * char * or const char * (arrays decay), b takes bool or int, i int, I json_int_t, f
 * double, % size_t, o and O json_t *. Any other type (an enum, a long, a const json_t *)
 * is refused: cast it. Do not nest a jsonpack in another's arguments. */
#define jsonpack(format, ...)                                                                                      \
	__extension__({                                                                                            \
		static const char jsonpack_types_[] = {JSONPACK_TYPES(__VA_ARGS__) '\0'};                          \
		static const struct jsonpack_site jsonpack_site_ = {__FILE__, __LINE__, format, jsonpack_types_};  \
		__attribute__((used, section("pgha_jsonpack"))) static const struct jsonpack_site *const          \
			jsonpack_registered_ = &jsonpack_site_;                                                    \
		jsonpack_checked(&jsonpack_site_, __VA_ARGS__);                                                    \
	})

/* One call of jsonpack in the source. */
struct jsonpack_site {
	const char *file;
	int line;
	const char *format;
	const char *types; /* the JSONPACK_TYPE of each argument after the format */
};

json_t *jsonpack_checked(const struct jsonpack_site *site, ...);

/* Whether site's format takes exactly the arguments it is given (why written if not). */
bool jsonpack_fits(const struct jsonpack_site *site, char *why, size_t why_size);
/* Every call of jsonpack linked into the program, run or not, and their count. */
const struct jsonpack_site *const *jsonpack_sites(size_t *count);

/* Whether a failure aborts (tests, fuzz targets) or returns NULL (pghad, pghactl). */
void jsonpack_set_strict(bool strict);
/* How many calls have failed since the program started: tests check it stays 0. */
unsigned long jsonpack_failures(void);

/* A JSON string of text that never fails: invalid UTF-8 (a message cut in the middle of
 * a character, bytes from elsewhere) is replaced by U+FFFD, NULL by "". */
json_t *jsonpack_text(const char *text);

/* The letter jsonpack_fits compares: s string, b bool, i int, I json_int_t, f double,
 * z size_t, o json_t *, ? anything else. */
#define JSONPACK_TYPE(value) \
	_Generic((value), char *: 's', const char *: 's', _Bool: 'b', int: 'i', json_int_t: 'I', double: 'f', \
		 size_t: 'z', json_t *: 'o', default: '?')

/* JSONPACK_TYPES(a, b, c) is JSONPACK_TYPE(a), JSONPACK_TYPE(b), JSONPACK_TYPE(c), */
#define JSONPACK_TYPES(...) JSONPACK_PASTE(JSONPACK_TYPES_, JSONPACK_COUNT(__VA_ARGS__))(__VA_ARGS__)
#define JSONPACK_PASTE(a, b) JSONPACK_PASTE_(a, b)
#define JSONPACK_PASTE_(a, b) a##b
#define JSONPACK_COUNT(...) \
	JSONPACK_COUNT_(__VA_ARGS__, 64, 63, 62, 61, 60, 59, 58, 57, 56, 55, \
	54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39, 38, 37, 36, 35, 34, 33, 32, 31, \
	30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, \
	4, 3, 2, 1)
#define JSONPACK_COUNT_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, _17, \
	_18, _19, _20, _21, _22, _23, _24, _25, _26, _27, _28, _29, _30, _31, _32, _33, _34, _35, _36, \
	_37, _38, _39, _40, _41, _42, _43, _44, _45, _46, _47, _48, _49, _50, _51, _52, _53, _54, _55, \
	_56, _57, _58, _59, _60, _61, _62, _63, _64, count, ...) count
#define JSONPACK_TYPES_1(value) JSONPACK_TYPE(value),
#define JSONPACK_TYPES_2(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_1(__VA_ARGS__)
#define JSONPACK_TYPES_3(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_2(__VA_ARGS__)
#define JSONPACK_TYPES_4(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_3(__VA_ARGS__)
#define JSONPACK_TYPES_5(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_4(__VA_ARGS__)
#define JSONPACK_TYPES_6(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_5(__VA_ARGS__)
#define JSONPACK_TYPES_7(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_6(__VA_ARGS__)
#define JSONPACK_TYPES_8(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_7(__VA_ARGS__)
#define JSONPACK_TYPES_9(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_8(__VA_ARGS__)
#define JSONPACK_TYPES_10(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_9(__VA_ARGS__)
#define JSONPACK_TYPES_11(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_10(__VA_ARGS__)
#define JSONPACK_TYPES_12(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_11(__VA_ARGS__)
#define JSONPACK_TYPES_13(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_12(__VA_ARGS__)
#define JSONPACK_TYPES_14(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_13(__VA_ARGS__)
#define JSONPACK_TYPES_15(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_14(__VA_ARGS__)
#define JSONPACK_TYPES_16(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_15(__VA_ARGS__)
#define JSONPACK_TYPES_17(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_16(__VA_ARGS__)
#define JSONPACK_TYPES_18(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_17(__VA_ARGS__)
#define JSONPACK_TYPES_19(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_18(__VA_ARGS__)
#define JSONPACK_TYPES_20(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_19(__VA_ARGS__)
#define JSONPACK_TYPES_21(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_20(__VA_ARGS__)
#define JSONPACK_TYPES_22(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_21(__VA_ARGS__)
#define JSONPACK_TYPES_23(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_22(__VA_ARGS__)
#define JSONPACK_TYPES_24(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_23(__VA_ARGS__)
#define JSONPACK_TYPES_25(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_24(__VA_ARGS__)
#define JSONPACK_TYPES_26(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_25(__VA_ARGS__)
#define JSONPACK_TYPES_27(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_26(__VA_ARGS__)
#define JSONPACK_TYPES_28(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_27(__VA_ARGS__)
#define JSONPACK_TYPES_29(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_28(__VA_ARGS__)
#define JSONPACK_TYPES_30(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_29(__VA_ARGS__)
#define JSONPACK_TYPES_31(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_30(__VA_ARGS__)
#define JSONPACK_TYPES_32(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_31(__VA_ARGS__)
#define JSONPACK_TYPES_33(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_32(__VA_ARGS__)
#define JSONPACK_TYPES_34(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_33(__VA_ARGS__)
#define JSONPACK_TYPES_35(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_34(__VA_ARGS__)
#define JSONPACK_TYPES_36(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_35(__VA_ARGS__)
#define JSONPACK_TYPES_37(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_36(__VA_ARGS__)
#define JSONPACK_TYPES_38(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_37(__VA_ARGS__)
#define JSONPACK_TYPES_39(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_38(__VA_ARGS__)
#define JSONPACK_TYPES_40(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_39(__VA_ARGS__)
#define JSONPACK_TYPES_41(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_40(__VA_ARGS__)
#define JSONPACK_TYPES_42(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_41(__VA_ARGS__)
#define JSONPACK_TYPES_43(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_42(__VA_ARGS__)
#define JSONPACK_TYPES_44(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_43(__VA_ARGS__)
#define JSONPACK_TYPES_45(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_44(__VA_ARGS__)
#define JSONPACK_TYPES_46(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_45(__VA_ARGS__)
#define JSONPACK_TYPES_47(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_46(__VA_ARGS__)
#define JSONPACK_TYPES_48(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_47(__VA_ARGS__)
#define JSONPACK_TYPES_49(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_48(__VA_ARGS__)
#define JSONPACK_TYPES_50(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_49(__VA_ARGS__)
#define JSONPACK_TYPES_51(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_50(__VA_ARGS__)
#define JSONPACK_TYPES_52(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_51(__VA_ARGS__)
#define JSONPACK_TYPES_53(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_52(__VA_ARGS__)
#define JSONPACK_TYPES_54(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_53(__VA_ARGS__)
#define JSONPACK_TYPES_55(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_54(__VA_ARGS__)
#define JSONPACK_TYPES_56(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_55(__VA_ARGS__)
#define JSONPACK_TYPES_57(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_56(__VA_ARGS__)
#define JSONPACK_TYPES_58(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_57(__VA_ARGS__)
#define JSONPACK_TYPES_59(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_58(__VA_ARGS__)
#define JSONPACK_TYPES_60(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_59(__VA_ARGS__)
#define JSONPACK_TYPES_61(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_60(__VA_ARGS__)
#define JSONPACK_TYPES_62(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_61(__VA_ARGS__)
#define JSONPACK_TYPES_63(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_62(__VA_ARGS__)
#define JSONPACK_TYPES_64(value, ...) JSONPACK_TYPE(value), JSONPACK_TYPES_63(__VA_ARGS__)

#endif
