/* podgone: whether a member's pod that left the API server may still run on its node, pure: the pod's last record on its claim, what its Node and node Lease say now, the renewals seen since, and which pods a list made again shows gone unseen. */
#ifndef PGHA_PODGONE_H
#define PGHA_PODGONE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* A node Lease's renewTime as the API writes it (RFC 3339, microseconds, "Z" or an offset),
 * with room to spare. */
#define PODGONE_TIME_SIZE 64
/* The renewals a node's kubelet makes, seen Ready, before its pod counts as gone: a
 * kubelet back from a partition kills the pods no longer in the API server within its
 * housekeeping period (~2 s) but may renew its Lease (every ~10 s) before that once; a
 * second renewal comes after its cleanup. */
#define PODGONE_RENEWALS 2

/* What the API server said of the pod's node, read since the pod was seen missing. */
struct podgone_node {
	bool answered;          /* both the Node and its Lease were read (200 or 404) */
	bool exists;            /* the Node object is there */
	bool ready;             /* its Ready condition is True */
	const char *renew_time; /* its Lease's spec.renewTime; NULL or "": none (no Lease, none written) */
};

/* What is kept between two judgements, per member waiting: "" at first. */
struct podgone_memory {
	char baseline[PODGONE_TIME_SIZE]; /* the renewTime counted from */
	char last[PODGONE_TIME_SIZE];     /* the latest renewTime seen */
	int renewals;                     /* later renewTimes seen, one after the other, while Ready */
};

enum podgone_verdict {
	PODGONE_MAY_RUN, /* its containers may still run on the node: nothing starts on its volume */
	PODGONE_GONE,    /* its kubelet is back and has had the time to kill it */
};

/* The verdict on a pod that left the API server while bound to node (its name, for why),
 * from what was read of the node now; memory follows the renewals (only renewTimes are
 * compared, each with the previous one: both are the kubelet's clock, never pghad's). A
 * renewal counts only while the node is Ready; a node seen not Ready starts the count
 * again. why says what it waits for (or why it is gone), for the status and the log. */
enum podgone_verdict podgone_judge(struct podgone_memory *memory, const char *node, const struct podgone_node *seen,
				   char *why, size_t why_size);

/* Compares two RFC 3339 times (a Lease's MicroTime, "2026-12-03T10:00:00.123456Z" or with
 * an offset): <0, 0, >0 as a is before, the same as, after b; false when either cannot be
 * read. */
bool podgone_time_compare(const char *a, const char *b, int *order);

/* The pods of previous (a watch's view, an array of pods) that listed (the list that
 * replaces it) no longer has, as a new array holding them as previously seen: each left the
 * API server while no watch was there to say so. A pod is matched by its uid, never its
 * name: one of the same name but another uid is another pod, the previous one gone. NULL
 * previous (no view yet): none. Pods without a uid are left out. */
json_t *podgone_unlisted(const json_t *previous, const json_t *listed);

#endif
