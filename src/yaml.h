/* yaml: a reader of the part of YAML that kubeconfig files are written in, into jansson values. */
#ifndef PGHA_YAML_H
#define PGHA_YAML_H

#include <stddef.h>

#include <jansson.h>

/* The one document in text: block mappings become objects, block sequences arrays
 * (also the "key:\n- item" form kubectl writes), scalars strings. The plain scalars
 * null, ~ and an empty value are null, true and false are booleans; numbers stay
 * strings. Plain and quoted scalars may continue on more indented lines (kubectl folds
 * long ones); flow collections ({}, [a, b], {a: b}) must end on their line. Anchors,
 * aliases, tags, block scalars (| and >) and several documents are refused: NULL with
 * "line N: reason" in why. */
json_t *yaml_parse(const char *text, char *why, size_t why_size);

#endif
