/* decide: the pure decision function: from a cluster's configuration, one observation and the remembered state, the ordered actions that create, heal, scale and fail it over (failover's own table is in failover.c). */
#include "autoconfig.h"

#include "decide.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memory.h"
#include "names.h"
#include "pg.h"
#include "syncnames.h"
#include "syncset.h"

const char *const action_type_names[] = {
	[ACTION_INITIALIZE] = "initialize",
	[ACTION_MOVE_ASIDE] = "move-aside",
	[ACTION_CLONE] = "clone",
	[ACTION_START] = "start",
	[ACTION_STOP] = "stop",
	[ACTION_CREATE_REPLICATION_ROLE] = "create-replication-role",
	[ACTION_ALTER_REPLICATION_ROLE] = "alter-replication-role",
	[ACTION_CREATE_SLOT] = "create-slot",
	[ACTION_DROP_SLOT] = "drop-slot",
	[ACTION_FOLLOW] = "follow",
	[ACTION_SET_SYNCHRONOUS] = "set-synchronous",
	[ACTION_CONFIGURE] = "configure",
	[ACTION_RESTART] = "restart",
	[ACTION_RESET_OVERRIDES] = "reset-overrides",
	[ACTION_FENCE] = "fence",
	[ACTION_PROMOTE] = "promote",
	[ACTION_REJOIN] = "rejoin",
	[ACTION_CUT] = "cut",
};
_Static_assert(sizeof action_type_names / sizeof action_type_names[0] == ACTION_TYPE_COUNT,
	       "a name for every action type");

/* The order actions are carried out in. A failed primary is fenced before anything
 * else, and its standbys cut from it right after; a candidate is promoted only after its synchronous list is set. A directory is moved aside before anything
 * could use it; the replication role exists before a standby connects with it; a
 * standby's slot exists before it is cloned, so the primary keeps the WAL the clone
 * needs; the synchronous list stops naming a removed member before that member stops,
 * so no commit waits on it; and its slot is dropped only once it has stopped. */
static const enum action_type execution_order[] = {
	ACTION_FENCE,	   ACTION_CUT,		   ACTION_MOVE_ASIDE,	   ACTION_INITIALIZE,	   ACTION_START,
	ACTION_CREATE_REPLICATION_ROLE, ACTION_ALTER_REPLICATION_ROLE, ACTION_CREATE_SLOT, ACTION_CLONE, ACTION_REJOIN,
	ACTION_FOLLOW,	   ACTION_RESET_OVERRIDES, ACTION_CONFIGURE,	   ACTION_SET_SYNCHRONOUS,
	ACTION_PROMOTE,	   ACTION_STOP,		   ACTION_DROP_SLOT,	   ACTION_RESTART,
};
_Static_assert(sizeof execution_order / sizeof execution_order[0] == ACTION_TYPE_COUNT,
	       "every action type has its place in the order");

/* A name by value, so that it can be written straight into a format's arguments. */
struct name {
	char text[MEMBER_NAME_SIZE];
};

/* An action and where it sorts among others of its type (the standby of a slot to
 * create, the member of a slot to drop), and the order it was decided in, so that
 * sorting is total and the result deterministic. */
struct pending_action {
	struct action action;
	int rank;
	int within_member;
	size_t sequence;
};

/* One decision being made. */
struct decision {
	const struct cluster_config *cluster;
	const struct cluster_observation *observation;
	const struct cluster_state *state;
	struct cluster_state next_state;
	int hold; /* a member left stopped while a failover decides its fate, or -1 */
	struct pending_action *items;
	size_t count, capacity;
	char waiting[sizeof ((struct action_list *)0)->waiting];
};

static struct name member_name(const struct cluster_config *cluster, int index)
{
	struct name name;

	names_member(name.text, sizeof name.text, cluster->name, index);
	return name;
}

static struct name slot_name(const struct cluster_config *cluster, int index)
{
	struct name name;

	names_slot(name.text, sizeof name.text, cluster->name, index);
	return name;
}

static const struct member_observation *find_member(const struct cluster_observation *observation, int index)
{
	for (size_t i = 0; i < observation->count; i++)
		if (observation->members[i].index == index)
			return &observation->members[i];
	return NULL;
}

static bool is_configured(const struct cluster_config *cluster, int index)
{
	return index >= 0 && index < cluster->replicas;
}

/* A postmaster runs, or one that exited has left processes behind: nothing may start
 * in its place yet. */
static bool is_running(const struct member_observation *member)
{
	return member->postmaster != 0 && !(member->postmaster_exited && member->live_processes == 0);
}

/* A member that accepts writes as far as its probe tells. */
static bool is_primary(const struct member_observation *member)
{
	return member->reachable && !member->in_recovery;
}

static bool has_slot(const struct member_observation *member, const char *slot)
{
	for (size_t i = 0; i < member->slot_count; i++)
		if (strcmp(member->slots[i], slot) == 0)
			return true;
	return false;
}

/* The index of the member whose slot is named slot in this cluster, or -1 when slot is
 * not named like one of ours (such slots belong to someone else and are never touched). */
static int slot_member_index(const struct cluster_config *cluster, const char *slot)
{
	struct name prefix = slot_name(cluster, 0);
	size_t prefix_length = strlen(prefix.text) - 1; /* without the "0" */
	const char *digits = slot + prefix_length;
	size_t digit_count = strspn(digits, "0123456789");

	if (strncmp(slot, prefix.text, prefix_length) != 0 || digit_count == 0 || digit_count > 9 ||
	    digits[digit_count] != '\0')
		return -1;

	int index = atoi(digits);

	/* only the spelling names_slot gives: "test_03" is not member 3's */
	return strcmp(slot_name(cluster, index).text, slot) == 0 ? index : -1;
}

static void waiting(struct decision *decision, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* The first thing waited for is shown; the others will show once it is resolved. Like
 * reasons, it is for people: a long one is cut rather than lost. */
static void waiting(struct decision *decision, const char *format, ...)
{
	va_list arguments;

	if (decision->waiting[0] != '\0')
		return;
	va_start(arguments, format);
	vsnprintf(decision->waiting, sizeof decision->waiting, format, arguments);
	va_end(arguments);
}

static struct action *add_action(struct decision *decision, enum action_type type, int member, int source,
				 int within_member, const char *reason_format, ...) __attribute__((format(printf, 6, 7)));

static struct action *add_action(struct decision *decision, enum action_type type, int member, int source,
				 int within_member, const char *reason_format, ...)
{
	va_list arguments;
	struct pending_action *pending;
	int rank = 0;

	if (decision->count == decision->capacity) {
		decision->capacity = decision->capacity ? 2 * decision->capacity : 8;
		decision->items = xreallocarray(decision->items, decision->capacity, sizeof *decision->items);
	}
	while (execution_order[rank] != type)
		rank++;
	pending = &decision->items[decision->count];
	*pending = (struct pending_action){
		.action = {.type = type, .member = member, .source = source},
		.rank = rank,
		.within_member = within_member,
		.sequence = decision->count,
	};
	decision->count++;
	va_start(arguments, reason_format);
	vsnprintf(pending->action.reason, sizeof pending->action.reason, reason_format, arguments);
	va_end(arguments);
	return &pending->action;
}

static int compare_pending(const void *left, const void *right)
{
	const struct pending_action *a = left, *b = right;

	if (a->rank != b->rank)
		return a->rank < b->rank ? -1 : 1;
	if (a->action.member != b->action.member)
		return a->action.member < b->action.member ? -1 : 1;
	if (a->within_member != b->within_member)
		return a->within_member < b->within_member ? -1 : 1;
	return a->sequence < b->sequence ? -1 : a->sequence > b->sequence;
}

/* No member has anything yet: the cluster is new, and only member 0 is initialized;
 * the others are cloned from it once it runs. */
static bool is_new_cluster(const struct cluster_observation *observation)
{
	for (size_t i = 0; i < observation->count; i++) {
		const struct member_observation *member = &observation->members[i];

		if (member->data_exists || member->data_unusable || member->busy || is_running(member))
			return false;
	}
	return true;
}

/* Rule 1: more than one member accepts writes. Acting on either could make things
 * worse (a clone from the wrong one, a slot on the wrong one), so nothing is done. */
static bool several_primaries(struct decision *decision)
{
	char list[sizeof decision->waiting] = "";
	size_t length = 0;
	int found = 0;

	for (size_t i = 0; i < decision->observation->count; i++) {
		const struct member_observation *member = &decision->observation->members[i];

		if (!is_primary(member))
			continue;
		if (length < sizeof list)
			length += (size_t)snprintf(list + length, sizeof list - length, "%s%s", found ? ", " : "",
						   member_name(decision->cluster, member->index).text);
		found++;
	}
	if (found > 1)
		waiting(decision, "several primaries: %s; not acting", list);
	return found > 1;
}

/* The slot of member on primary exists, or this decision creates it first: true. False
 * when primary is busy and it cannot be created now; waiting then says it is needed
 * "for" what (a clone, a rejoin or a follow would fail without it, and a standby whose
 * slot is missing waits wal_retrieve_retry_interval before it tries again). */
static bool plan_slot(struct decision *decision, const struct member_observation *primary, int member, const char *for_what)
{
	const struct cluster_config *cluster = decision->cluster;
	struct name slot = slot_name(cluster, member);
	struct name primary_name = member_name(cluster, primary->index);

	if (has_slot(primary, slot.text))
		return true;
	if (primary->busy) {
		waiting(decision, "waiting for %s to be free to create the slot %s %s", primary_name.text, slot.text,
			for_what);
		return false;
	}
	add_action(decision, ACTION_CREATE_SLOT, primary->index, member, member,
		   "%s lacks the slot %s, needed %s: creating it first, so that %s keeps the WAL it needs",
		   primary_name.text, slot.text, for_what, primary_name.text);
	return true;
}

/* Rule 3b: a configured member without a data directory is cloned from the primary,
 * after the primary has its slot. */
static void plan_clone(struct decision *decision, const struct member_observation *member,
		       const struct member_observation *primary)
{
	const struct cluster_config *cluster = decision->cluster;
	struct name name = member_name(cluster, member->index);

	if (is_running(member)) {
		/* a postmaster runs on a directory that is no longer there: cloning over it
		 * would be writing under a live server */
		waiting(decision, "%s has no data directory but its postmaster %ld still runs; not cloning over it",
			name.text, (long)member->postmaster);
		return;
	}
	if (!primary) {
		waiting(decision, "waiting for a primary to clone %s from", name.text);
		return;
	}

	struct name primary_name = member_name(cluster, primary->index);
	char for_what[128];

	if (!primary->replication_role) {
		waiting(decision, "waiting for the replication role on %s to clone %s from it", primary_name.text,
			name.text);
		return;
	}
	snprintf(for_what, sizeof for_what, "before cloning %s", name.text);
	if (!plan_slot(decision, primary, member->index, for_what))
		return;
	add_action(decision, ACTION_CLONE, member->index, primary->index, 0, "%s has no data directory: cloning it from %s",
		   name.text, primary_name.text);
}

/* Another member that is a primary, or could be one by the time member starts, and
 * what makes it so; NULL when there is none. */
static const char *possible_primary(const struct decision *decision, const struct member_observation *member,
				    const struct member_observation **other)
{
	for (size_t i = 0; i < decision->observation->count; i++) {
		const struct member_observation *candidate = &decision->observation->members[i];

		*other = candidate;
		if (candidate == member)
			continue;
		if (is_primary(candidate))
			return "is the primary";
		if (candidate->standby_signal)
			continue;
		if (is_running(candidate))
			return "runs without standby.signal";
		/* pgha may be starting it right now */
		if (candidate->busy)
			return "is busy and has no standby.signal";
		/* it would be started in this same round */
		if (is_configured(decision->cluster, candidate->index) && candidate->data_exists &&
		    !candidate->data_unusable)
			return "is stopped without standby.signal too";
	}
	*other = NULL;
	return NULL;
}

/* Rule 3f: a stopped member without standby.signal while another member is the primary
 * is a former primary: it rejoins as a standby of the primary (pg_rewind first if its
 * history diverged), after the primary has its slot. */
static void plan_rejoin(struct decision *decision, const struct member_observation *member,
			const struct member_observation *primary)
{
	const struct cluster_config *cluster = decision->cluster;
	struct name name = member_name(cluster, member->index);
	struct name primary_name = member_name(cluster, primary->index);
	char for_what[128];

	if (member->live_processes > 0) {
		waiting(decision, "%s's postmaster is gone but %d of its processes still run; not rejoining it yet",
			name.text, member->live_processes);
		return;
	}
	if (primary->timeline <= member->timeline) {
		/* pg_rewind reads the source's timeline from its pg_control, which a promotion
		 * updates only at its first checkpoint: before that it sees nothing to rewind */
		waiting(decision, "waiting for %s's checkpoint on its new timeline (pg_control says %u, %s's %u) "
				  "before %s rejoins",
			primary_name.text, primary->timeline, name.text, member->timeline, name.text);
		return;
	}
	snprintf(for_what, sizeof for_what, "before %s rejoins", name.text);
	if (!plan_slot(decision, primary, member->index, for_what))
		return;
	add_action(decision, ACTION_REJOIN, member->index, primary->index, 0,
		   "%s is stopped without standby.signal and %s is the primary: %s rejoins as its standby "
		   "(pg_rewind if it diverged)",
		   name.text, primary_name.text, name.text);
}

/* Rule 3g: a running standby whose WAL goes past the point where the primary's history
 * left its timeline cannot follow the primary (PostgreSQL refuses it) and must never be
 * counted on: it is stopped and rewound (pg_rewind; moved aside and cloned again if that
 * fails), then starts as a standby of the primary. */
static void plan_rewind(struct decision *decision, const struct member_observation *member,
			const struct member_observation *primary)
{
	const struct cluster_config *cluster = decision->cluster;
	struct name name = member_name(cluster, member->index);
	struct name primary_name = member_name(cluster, primary->index);
	char for_what[128], position[32];

	if (primary->timeline < primary->wal_timeline) {
		/* pg_rewind reads the source's timeline from its pg_control */
		waiting(decision, "waiting for %s's checkpoint on timeline %u before rewinding %s, which diverged",
			primary_name.text, primary->wal_timeline, name.text);
		return;
	}
	snprintf(for_what, sizeof for_what, "before %s is rewound", name.text);
	if (!plan_slot(decision, primary, member->index, for_what))
		return;
	pg_lsn_format(position, sizeof position, observation_position(member));
	add_action(decision, ACTION_REJOIN, member->index, primary->index, 0,
		   "%s diverged: its WAL goes to %s on timeline %u, which %s's history (timeline %u) does not hold: "
		   "stopping it and rewinding it (pg_rewind) to follow %s",
		   name.text, position, member->wal_timeline, primary_name.text, primary->wal_timeline, primary_name.text);
}

/* Rule 3c: a configured member with data and no postmaster is started, unless it could
 * come up as a second primary. */
static void plan_start(struct decision *decision, const struct member_observation *member)
{
	const struct cluster_config *cluster = decision->cluster;
	struct name name = member_name(cluster, member->index);
	const struct member_observation *other;
	const char *why;

	if (member->index == decision->hold)
		return; /* failover decides what becomes of it */
	if (member->standby_signal) {
		add_action(decision, ACTION_START, member->index, -1, 0,
			   "%s has a data directory and standby.signal but no postmaster: starting it as a standby",
			   name.text);
		return;
	}
	why = possible_primary(decision, member, &other);
	if (why && is_primary(other)) {
		plan_rejoin(decision, member, other);
		return;
	}
	if (why) {
		/* which of the two should be primary is a failover decision, and rejoining the
		 * other (pg_rewind) comes with failover: until then it stays stopped */
		waiting(decision, "not starting %s: without standby.signal it would come up as a primary, and %s %s",
			name.text, member_name(cluster, other->index).text, why);
		return;
	}
	add_action(decision, ACTION_START, member->index, -1, 0,
		   "%s has a data directory but no postmaster, and no other member is or may become primary: "
		   "starting it",
		   name.text);
}

/* Whether the primary's synchronous_standby_names may name member: true when it names
 * it, and when the value cannot be read (the next SET_SYNCHRONOUS replaces it). */
static bool may_be_synchronous(const struct member_observation *primary, const char *member)
{
	struct sync_spec spec;
	char why[256];
	bool named = false;

	if (!syncnames_parse(observation_text(primary->synchronous_standby_names), &spec, why, sizeof why))
		return true;
	for (size_t i = 0; i < spec.count && !named; i++)
		named = syncnames_name_matches(spec.names[i], member);
	sync_spec_free(&spec);
	return named;
}

/* Rule 3d: a member removed by scaling down stops, once no commit can wait on it. */
static void plan_stop_removed(struct decision *decision, const struct member_observation *member,
			      const struct member_observation *primary)
{
	const struct cluster_config *cluster = decision->cluster;
	struct name name = member_name(cluster, member->index);

	if (member == primary) {
		/* stopping it would leave the cluster without a primary; moving the primary
		 * elsewhere is a switchover */
		waiting(decision, "%s is the primary but beyond replicas = %d; it keeps running", name.text,
			cluster->replicas);
		return;
	}
	if (!primary) {
		add_action(decision, ACTION_STOP, member->index, -1, 0,
			   "%s is beyond replicas = %d and no primary can wait on it: stopping it (its data is kept)",
			   name.text, cluster->replicas);
		return;
	}

	struct name primary_name = member_name(cluster, primary->index);

	if (may_be_synchronous(primary, name.text)) {
		waiting(decision, "waiting for %s to leave synchronous_standby_names on %s before stopping it", name.text,
			primary_name.text);
		return;
	}
	add_action(decision, ACTION_STOP, member->index, -1, 0,
		   "%s is beyond replicas = %d and %s's synchronous_standby_names no longer names it: stopping it "
		   "(its data is kept)",
		   name.text, cluster->replicas, primary_name.text);
}

/* Rule 3e: a running standby has its slot on the primary and follows it. */
static void plan_follow(struct decision *decision, const struct member_observation *standby,
			const struct member_observation *primary)
{
	const struct cluster_config *cluster = decision->cluster;
	struct name name = member_name(cluster, standby->index);
	struct name primary_name = member_name(cluster, primary->index);
	char for_what[128];

	snprintf(for_what, sizeof for_what, "for %s to follow it", name.text);
	if (!plan_slot(decision, primary, standby->index, for_what))
		return;
	if (standby->upstream != primary->index) {
		if (standby->upstream < 0)
			add_action(decision, ACTION_FOLLOW, standby->index, primary->index, 0,
				   "%s follows no known member, not the primary %s: pointing it at %s", name.text,
				   primary_name.text, primary_name.text);
		else
			add_action(decision, ACTION_FOLLOW, standby->index, primary->index, 0,
				   "%s follows %s, not the primary %s: pointing it at %s", name.text,
				   member_name(cluster, standby->upstream).text, primary_name.text, primary_name.text);
	} else if (!standby->follow_settings_current) {
		add_action(decision, ACTION_FOLLOW, standby->index, primary->index, 0,
			   "%s's settings for following %s are not those pgha writes: rewriting them", name.text,
			   primary_name.text);
	}
}

/* Whether observed and desired synchronous_standby_names mean something different. */
static bool synchronous_names_differ(const char *observed, const char *desired)
{
	struct sync_spec observed_spec, desired_spec;
	char why[256];
	bool differ = true;

	if (!syncnames_parse(observed, &observed_spec, why, sizeof why))
		return true;
	if (syncnames_parse(desired, &desired_spec, why, sizeof why)) {
		differ = !syncnames_equal(&observed_spec, &desired_spec);
		sync_spec_free(&desired_spec);
	}
	sync_spec_free(&observed_spec);
	return differ;
}

/* Whether number of list's members have flushed up to lsn, as primary's
 * pg_stat_replication says (an empty list asks for none). */
static bool list_has_flushed(const struct member_observation *primary, const char *list, uint64_t lsn)
{
	struct sync_spec spec;
	char why[256];
	int confirmed = 0;

	if (!syncnames_parse(list, &spec, why, sizeof why))
		return false;
	for (size_t s = 0; s < spec.count; s++)
		for (size_t p = 0; p < primary->peer_count; p++)
			if (syncnames_name_matches(spec.names[s], primary->peers[p].application_name) &&
			    primary->peers[p].flush_lsn >= lsn) {
				confirmed++;
				break;
			}
	bool flushed = confirmed >= spec.number;
	sync_spec_free(&spec);
	return flushed;
}

/* One list that a failover satisfies only if it satisfies both a and b: their names,
 * with the smaller number. Commits acknowledged under a are on a.number of a's names;
 * any n - m + 1 of the n names of the union, m <= a.number, include one of those. An
 * empty list adds nothing: nothing was acknowledged synchronously under it. NULL when
 * either cannot be read. */
static char *merge_lists(const char *a, const char *b)
{
	struct sync_spec left, right;
	char why[256];
	char *merged = NULL;

	if (!syncnames_parse(a, &left, why, sizeof why))
		return NULL;
	if (syncnames_parse(b, &right, why, sizeof why)) {
		const struct sync_spec *only = left.count == 0 ? &right : right.count == 0 ? &left : NULL;
		if (only) {
			merged = syncnames_render(only->method, only->number, (const char *const *)only->names, only->count);
		} else {
			const char **names = xcalloc(left.count + right.count, sizeof *names);
			size_t count = 0;
			for (size_t i = 0; i < left.count; i++)
				names[count++] = left.names[i];
			for (size_t i = 0; i < right.count; i++) {
				bool known = false;
				for (size_t j = 0; j < left.count && !known; j++)
					known = syncnames_name_matches(left.names[j], right.names[i]);
				if (!known)
					names[count++] = right.names[i];
			}
			merged = syncnames_render(SYNC_METHOD_ANY, left.number < right.number ? left.number : right.number,
						  names, count);
			free(names);
		}
		sync_spec_free(&right);
	}
	sync_spec_free(&left);
	return merged;
}

/* Rule 4: the primary's replication role, the slots of removed members, and its
 * synchronous list. */
static void plan_primary(struct decision *decision, const struct member_observation *primary)
{
	const struct cluster_config *cluster = decision->cluster;
	struct name primary_name = member_name(cluster, primary->index);

	if (primary->busy) {
		waiting(decision, "waiting for %s, the primary, to be free", primary_name.text);
		return;
	}
	/* a role that exists would make CREATE ROLE fail at every iteration */
	if (!primary->replication_role_exists)
		add_action(decision, ACTION_CREATE_REPLICATION_ROLE, primary->index, -1, 0,
			   "%s is the primary and lacks pgha's replication role: creating it", primary_name.text);
	else if (!primary->replication_role)
		add_action(decision, ACTION_ALTER_REPLICATION_ROLE, primary->index, -1, 0,
			   "%s is the primary and pgha's replication role lacks LOGIN or REPLICATION: giving them back",
			   primary_name.text);

	for (size_t i = 0; i < primary->slot_count; i++) {
		int index = slot_member_index(cluster, primary->slots[i]);
		const struct member_observation *owner;

		if (index < 0 || is_configured(cluster, index))
			continue;
		owner = find_member(decision->observation, index);
		if (owner && (is_running(owner) || owner->busy))
			continue; /* dropped once it has stopped */
		struct action *action =
			add_action(decision, ACTION_DROP_SLOT, primary->index, -1, index,
				   "%s holds the slot %s of %s, which replicas = %d removed and which no longer runs: "
				   "dropping it",
				   primary_name.text, primary->slots[i], member_name(cluster, index).text, cluster->replicas);
		snprintf(action->text, sizeof action->text, "%s", primary->slots[i]);
	}

	/* CREATE ROLE is a commit: under a synchronous list that no standby can satisfy
	 * yet (none can connect without the role) it would wait forever */
	if (!primary->replication_role)
		return;

	char *desired = syncset_names(cluster, decision->observation, primary->index);

	struct cluster_state *next = &decision->next_state;
	const char *running = observation_text(primary->synchronous_standby_names);
	bool running_published = !synchronous_names_differ(running, next->synchronous);

	/* a promotion just completed keeps the lists begin_promote published */
	if (!next->synchronous_known ||
	    (decision->state->primary != primary->index && decision->state->failover.to != primary->index)) {
		/* what the primary runs is what its commits wait for: that is published */
		snprintf(next->synchronous, sizeof next->synchronous, "%s", running);
		next->previous[0] = '\0';
		next->synchronous_since_lsn = 0;
		next->synchronous_known = true;
		running_published = true;
	} else if (next->previous[0] && running_published) {
		/* the new list is in force; every commit acknowledged under the one before lies
		 * below the primary's WAL position now, and the list before leaves the failover
		 * pool only once the new list's members have flushed that far */
		if (!next->synchronous_since_lsn)
			next->synchronous_since_lsn = primary->lsn;
		if (list_has_flushed(primary, next->synchronous, next->synchronous_since_lsn)) {
			next->previous[0] = '\0';
			next->synchronous_since_lsn = 0;
		}
	}
	if (synchronous_names_differ(running, desired)) {
		char *pool = next->previous[0] ? merge_lists(next->previous, next->synchronous) : xstrdup(next->synchronous);
		if (!running_published) {
			waiting(decision, "waiting for %s to run the published synchronous list '%s' before changing it",
				primary_name.text, next->synchronous);
		} else if (strlen(desired) >= sizeof ((struct action *)0)->text) {
			waiting(decision, "the synchronous_standby_names %s should run is too long (%zu bytes) to set",
				primary_name.text, strlen(desired));
		} else if (!pool || strlen(pool) >= sizeof next->previous) {
			waiting(decision, "the synchronous lists that may hold acknowledged commits do not fit in the "
					  "remembered state; waiting for '%s' to be confirmed before changing it",
				next->synchronous);
		} else {
			struct action *action = add_action(
				decision, ACTION_SET_SYNCHRONOUS, primary->index, -1, 0,
				"%s runs synchronous_standby_names = '%s'; the configuration and the streaming standbys "
				"call for '%s'",
				primary_name.text, running, desired);
			snprintf(action->text, sizeof action->text, "%s", desired);
			/* intent first: until the new list's members have confirmed what was
			 * acknowledged before it, a failover must satisfy the lists before it too;
			 * a change while one is still unconfirmed keeps both earlier lists, merged */
			snprintf(next->previous, sizeof next->previous, "%s", pool);
			snprintf(next->synchronous, sizeof next->synchronous, "%s", desired);
			next->synchronous_since_lsn = 0;
		}
		free(pool);
	}
	free(desired);
}

static void finish(struct decision *decision, struct action_list *actions)
{
	if (decision->count > 0) {
		qsort(decision->items, decision->count, sizeof *decision->items, compare_pending);
		actions->items = xcalloc(decision->count, sizeof *actions->items);
	}
	for (size_t i = 0; i < decision->count; i++)
		actions->items[i] = decision->items[i].action;
	actions->count = decision->count;
	snprintf(actions->waiting, sizeof actions->waiting, "%s", decision->waiting);
	actions->next_state = decision->next_state;
	free(decision->items);
}

/* Settings: every running member's pgha.conf is rewritten and reloaded as soon as it
 * differs from the configuration. Settings that need a restart are then applied one
 * member at a time, and only once every member runs the new file and nothing else is
 * under way: a standby must never run a hot-standby-sensitive setting lower than its
 * primary's, so a lowered one restarts the primary first; otherwise the standbys go
 * first, lowest index first, and the primary, whose restart interrupts writes, last. */
static void plan_settings(struct decision *decision, const struct member_observation *primary)
{
	const struct cluster_config *cluster = decision->cluster;
	const struct member_observation *next = NULL;
	bool unsettled = false;

	for (size_t i = 0; i < decision->observation->count; i++) {
		const struct member_observation *member = &decision->observation->members[i];
		if (member->busy || (is_configured(cluster, member->index) && is_running(member) && !member->reachable))
			unsettled = true;
		/* ALTER SYSTEM is read after pgha's files: an override of what pgha owns (its
		 * synchronous list, above all) would silently win */
		if (!member->busy && member->reachable && member->overridden[0]) {
			struct action *reset = add_action(decision, ACTION_RESET_OVERRIDES, member->index, -1, 0,
							  "ALTER SYSTEM overrides %s on %s, which pgha sets: resetting it",
							  member->overridden, member_name(cluster, member->index).text);
			snprintf(reset->text, sizeof reset->text, "%s", member->overridden);
			unsettled = true;
		}
		if (member->busy || !member->reachable || !is_configured(cluster, member->index) ||
		    member->settings_current)
			continue;
		add_action(decision, ACTION_CONFIGURE, member->index, -1, 0,
			   "%s's pgha.conf differs from the configuration: rewriting it and reloading",
			   member_name(cluster, member->index).text);
		unsettled = true;
	}
	if (unsettled || !primary)
		return;
	if (primary->pending_restart && primary->lowers_standby_sensitive)
		next = primary;
	for (size_t i = 0; i < decision->observation->count && !next; i++) {
		const struct member_observation *member = &decision->observation->members[i];
		/* a standby restarts once it streams again: it has then replayed what its primary
		 * changed when it restarted, so it starts with values the primary allows */
		if (member != primary && member->reachable && member->in_recovery && member->streaming &&
		    member->pending_restart && is_configured(cluster, member->index))
			next = member;
	}
	if (!next && primary->pending_restart)
		next = primary;
	if (!next)
		return;
	if (next == primary && primary->lowers_standby_sensitive)
		add_action(decision, ACTION_RESTART, next->index, -1, 0,
			   "%s, the primary, waits for a restart that lowers a setting its standbys must not run "
			   "lower than it: restarting it before them",
			   member_name(cluster, next->index).text);
	else if (next == primary)
		add_action(decision, ACTION_RESTART, next->index, -1, 0,
			   "%s, the primary, waits for a restart and its standbys run the new settings: restarting it last",
			   member_name(cluster, next->index).text);
	else
		add_action(decision, ACTION_RESTART, next->index, -1, 0,
			   "%s waits for a restart: restarting standbys first, one at a time, then the primary",
			   member_name(cluster, next->index).text);
}

/* Failover's step becomes actions; while a failover is under way, or the primary's
 * fate is undecided, the member it holds is left alone by the other rules. */
static void plan_failover(struct decision *decision, const struct failover_request *request,
			  struct action_list *actions)
{
	static const enum action_type types[] = {
		[FAILOVER_ACTION_FENCE] = ACTION_FENCE,
		[FAILOVER_ACTION_CUT] = ACTION_CUT,
		[FAILOVER_ACTION_STOP] = ACTION_STOP,
		[FAILOVER_ACTION_SET_SYNCHRONOUS] = ACTION_SET_SYNCHRONOUS,
		[FAILOVER_ACTION_PROMOTE] = ACTION_PROMOTE,
	};
	struct failover_step step;

	failover_step(decision->cluster, decision->observation, decision->state, request, &step);
	decision->next_state = step.next;
	decision->hold = step.hold;
	actions->hurry = step.hurry;
	actions->transition = step.transition;
	actions->request_taken = step.request_taken;
	snprintf(actions->request_error, sizeof actions->request_error, "%s", step.request_error);
	if (step.waiting[0])
		waiting(decision, "%s", step.waiting);
	if (step.action == FAILOVER_ACTION_NONE)
		return;
	if (step.action == FAILOVER_ACTION_CUT) {
		for (size_t i = 0; i < decision->observation->count; i++) {
			const struct member_observation *member = &decision->observation->members[i];
			if (failover_needs_cut(member, step.next.failover.from))
				add_action(decision, ACTION_CUT, member->index, -1, 0, "%s", step.reason);
		}
		return;
	}
	struct action *action = add_action(decision, types[step.action], step.member, -1, 0, "%s", step.reason);
	if (step.action == FAILOVER_ACTION_SET_SYNCHRONOUS)
		snprintf(action->text, sizeof action->text, "%s", step.next.synchronous);
}

void decide(const struct cluster_config *cluster, const struct cluster_observation *observation,
	    const struct cluster_state *state, const struct failover_request *request, struct action_list *actions)
{
	struct decision decision = {.cluster = cluster, .observation = observation, .state = state, .hold = -1};
	const struct member_observation *primary = NULL;
	bool in_progress;

	*actions = (struct action_list){0};
	decision.next_state = *state;
	if (several_primaries(&decision)) {
		finish(&decision, actions);
		return;
	}
	for (size_t i = 0; i < observation->count; i++)
		if (is_primary(&observation->members[i]))
			primary = &observation->members[i];

	plan_failover(&decision, request, actions);
	in_progress = decision.next_state.failover.kind != FAILOVER_NONE;
	if (in_progress && primary && primary->index != decision.next_state.failover.to) {
		/* a switchover's old primary until it has shut down: nothing new on it */
		finish(&decision, actions);
		return;
	}
	/* the standbys a promotion leaves follow the candidate already (a cascade, which
	 * continues on its new timeline), so that commits on it find a synchronous standby
	 * streaming the moment it is promoted; it is the most advanced, so each can, unless
	 * the operator forced a standby behind another: that one diverges, and is rewound
	 * once the candidate is promoted */
	const struct member_observation *leader = primary;
	if (!leader && in_progress && decision.next_state.failover.phase == PHASE_PROMOTE) {
		const struct member_observation *candidate = find_member(observation, decision.next_state.failover.to);
		if (candidate && candidate->reachable && candidate->in_recovery)
			leader = candidate;
	}

	if (is_new_cluster(observation)) {
		add_action(&decision, ACTION_INITIALIZE, 0, -1, 0,
			   "no member of cluster %s has a data directory: initializing %s as its first primary",
			   cluster->name, member_name(cluster, 0).text);
		finish(&decision, actions);
		return;
	}

	for (size_t i = 0; i < observation->count; i++) {
		const struct member_observation *member = &observation->members[i];
		bool configured = is_configured(cluster, member->index);

		if (member->busy || member->index == decision.hold)
			continue;
		if (member->data_unusable) {
			if (is_running(member))
				waiting(&decision, "%s's data directory looks unusable but its postmaster %ld runs; "
						   "not moving it aside",
					member_name(cluster, member->index).text, (long)member->postmaster);
			else
				add_action(&decision, ACTION_MOVE_ASIDE, member->index, -1, 0,
					   "%s's data directory holds something pgha cannot use: moving it aside (it is "
					   "kept, never deleted)",
					   member_name(cluster, member->index).text);
			continue;
		}
		if (!member->data_exists) {
			if (configured)
				plan_clone(&decision, member, primary);
			continue;
		}
		if (!is_running(member)) {
			if (configured)
				plan_start(&decision, member);
			continue;
		}
		if (!configured)
			plan_stop_removed(&decision, member, primary);
		else if (primary && observation_diverged(member, primary))
			plan_rewind(&decision, member, primary);
		else if (primary && member->reachable && member->in_recovery)
			plan_follow(&decision, member, primary);
		else if (leader && member != leader && member->reachable && member->in_recovery &&
			 !observation_diverged(member, leader))
			plan_follow(&decision, member, leader);
	}
	if (primary)
		plan_primary(&decision, primary);
	plan_settings(&decision, primary);
	finish(&decision, actions);
}

void action_list_free(struct action_list *actions)
{
	if (!actions)
		return;
	free(actions->items);
	*actions = (struct action_list){0};
}
