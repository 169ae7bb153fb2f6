/* podgone: whether a member's pod that left the API server may still run on its node, pure: the pod's last record on its claim, what its Node and node Lease say now, the renewals seen since, and which pods a list made again shows gone unseen. */
#include "autoconfig.h"

#include "podgone.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)" as seconds since the epoch and
 * microseconds (a longer fraction is cut, a shorter one padded). */
static bool parse_time(const char *text, long long *seconds, long *micros)
{
	int year, month, day, hour, minute, second, length = 0;

	if (!text || sscanf(text, "%4d-%2d-%2d%*1[Tt]%2d:%2d:%2d%n", &year, &month, &day, &hour, &minute, &second,
			    &length) != 6 || length != 19)
		return false;
	if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
		return false;
	const char *rest = text + length;
	long fraction = 0;
	if (*rest == '.') {
		int digits = 0;
		for (rest++; *rest >= '0' && *rest <= '9'; rest++, digits++)
			if (digits < 6)
				fraction = fraction * 10 + (*rest - '0');
		if (!digits)
			return false;
		for (; digits < 6; digits++)
			fraction *= 10;
	}
	long offset = 0;
	if (*rest == 'Z' || *rest == 'z') {
		rest++;
	} else if (*rest == '+' || *rest == '-') {
		int hours, minutes, used = 0;
		if (sscanf(rest + 1, "%2d:%2d%n", &hours, &minutes, &used) != 2 || used != 5 || hours > 23 || minutes > 59)
			return false;
		offset = (hours * 60L + minutes) * 60L * (*rest == '-' ? -1 : 1);
		rest += 6;
	} else {
		return false;
	}
	if (*rest)
		return false;
	struct tm civil = {.tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day, .tm_hour = hour,
			   .tm_min = minute, .tm_sec = second};
	*seconds = (long long)timegm(&civil) - offset;
	*micros = fraction;
	return true;
}

bool podgone_time_compare(const char *a, const char *b, int *order)
{
	long long a_seconds, b_seconds;
	long a_micros, b_micros;

	if (!parse_time(a, &a_seconds, &a_micros) || !parse_time(b, &b_seconds, &b_micros))
		return false;
	*order = a_seconds != b_seconds ? (a_seconds < b_seconds ? -1 : 1)
					: a_micros != b_micros ? (a_micros < b_micros ? -1 : 1) : 0;
	return true;
}

static void remember(char *buffer, const char *value)
{
	snprintf(buffer, PODGONE_TIME_SIZE, "%s", value ? value : "");
}

enum podgone_verdict podgone_judge(struct podgone_memory *memory, const char *node, const struct podgone_node *seen,
				   char *why, size_t why_size)
{
	const char *renewed = seen->renew_time && seen->renew_time[0] ? seen->renew_time : NULL;
	int order = 0;

	if (!seen->answered) {
		snprintf(why, why_size, "reading node %s and its Lease", node);
		return PODGONE_MAY_RUN;
	}
	if (!seen->exists) {
		/* the node may come back (its kubelet registers it again), its pod with it */
		memory->baseline[0] = memory->last[0] = '\0';
		memory->renewals = 0;
		snprintf(why, why_size, "node %s does not exist: waiting for it to be Ready again", node);
		return PODGONE_MAY_RUN;
	}
	if (renewed && !podgone_time_compare(renewed, renewed, &order)) {
		snprintf(why, why_size, "node %s's Lease has a renewTime that cannot be read (%.64s)", node, renewed);
		return PODGONE_MAY_RUN;
	}
	if (!seen->ready) {
		/* counted again from here: a kubelet not Ready may renew and still not clean up */
		remember(memory->baseline, renewed);
		remember(memory->last, renewed);
		memory->renewals = 0;
		snprintf(why, why_size, "node %s is not Ready", node);
		return PODGONE_MAY_RUN;
	}
	if (renewed) {
		if (!memory->baseline[0]) {
			remember(memory->baseline, renewed);
			remember(memory->last, renewed);
		} else if (podgone_time_compare(renewed, memory->last, &order) && order > 0) {
			remember(memory->last, renewed);
			memory->renewals++;
		} else if (order < 0) {
			/* earlier than the last one seen (the Lease made again, the kubelet's clock
			 * set back): counted again from it */
			remember(memory->baseline, renewed);
			remember(memory->last, renewed);
			memory->renewals = 0;
		}
	}
	if (memory->renewals >= PODGONE_RENEWALS) {
		snprintf(why, why_size, "node %s is Ready and renewed its Lease %d times since", node, memory->renewals);
		return PODGONE_GONE;
	}
	if (!renewed && !memory->baseline[0])
		snprintf(why, why_size, "node %s is Ready but has no Lease renewed: waiting for %d renewals", node,
			 PODGONE_RENEWALS);
	else
		snprintf(why, why_size, "waiting for node %s to renew its Lease (%d of %d renewals seen)", node,
			 memory->renewals, PODGONE_RENEWALS);
	return PODGONE_MAY_RUN;
}

static const char *pod_uid(const json_t *pod)
{
	return json_string_value(json_object_get(json_object_get(pod, "metadata"), "uid"));
}

json_t *podgone_unlisted(const json_t *previous, const json_t *listed)
{
	json_t *uids = json_object(), *unlisted = json_array();
	size_t i;
	json_t *pod;

	json_array_foreach(listed, i, pod)
		if (pod_uid(pod))
			json_object_set_new(uids, pod_uid(pod), json_true());
	json_array_foreach(previous, i, pod)
		if (pod_uid(pod) && !json_object_get(uids, pod_uid(pod)))
			json_array_append(unlisted, pod);
	json_decref(uids);
	return unlisted;
}
