/*
 * The liberator agent's self-fencing and the agent fence provider's release
 * rule, for SPIN (docs/design.md, "Self-fencing with the liberator agent";
 * internal/agentlease, internal/agent, decide.AgentFenced).
 *
 * Three nodes, each with its agent and its watchdog. Time is a global tick
 * of one check interval; every clock counts ticks and saturates, so the
 * state space is finite. In a tick each running agent makes one iteration,
 * in any order, and the API may go down or come back between two of them;
 * the other faults and the controller act between ticks. The controller is
 * the agent fence provider of one incident: it asks node 0's agent to
 * fence, and releases node 0 when the release rule says so. Faults: an API
 * outage for everyone, a node cut off from the API only, a node cut off from
 * everything, an agent process that dies (and may be restarted by its
 * DaemonSet), a controller restart (a new leader), watch events delivered
 * up to the margin late.
 *
 * Properties (model/README.md):
 *   A1  node 0 is never released while it runs (not reset by its watchdog)
 *   A2  no node is reset unless it is faulted itself (cut off, its agent
 *       died, asked to fence) or at least two nodes are: an API outage for
 *       everyone resets nobody (no mass reboot)
 *   A3  liveness (-DA3): once node 0 is asked to fence and the API and the
 *       other two nodes stay healthy, node 0 is released
 * model/verify.sh runs them, and the variants below (-DBROKEN_..., -DCODE_...,
 * -DDESIGN_...), which must fail.
 */

/* ---- bounds (ticks; a tick is one check interval C, also the renew interval R) ---- */
#ifndef A
#define A   6   /* API timeout: Validate wants >= 2(R+C) = 4; 6 makes F = 2 > R */
#endif
#ifndef WD
#define WD  3   /* watchdog timeout: checkBounds wants >= 2C+P = 3 */
#endif
#ifndef M
#define M   1   /* the class's margin: a watch event arrives at most M late */
#endif
#define C   1   /* check interval */
#define P   1   /* peer timeout: a round's feed comes at the latest with the next iteration */
#define HALF (A/2)
#define QUORUM 2  /* agentlease.QuorumOf(3) */

#ifdef BROKEN_BOUND_NO_WD
#define BWD 0     /* the bounds forget the watchdog timeout */
#else
#define BWD WD
#endif
#define ISO   (A + C + P + BWD)   /* Bounds.Isolation() */
#define BOUND (ISO + M)           /* release at max(L, Q) + BOUND */
#define ACKB  (BWD + M)           /* or at ackSeen + ACKB */
#ifdef FRESH_NO_MARGIN
#define F     HALF                /* fresh without the margin (A1 still holds: model/README.md) */
#else
#define F     (HALF - M)          /* fresh: a renewal seen under F ago */
#endif

/* How late a renewal's watch event may reach the controller while the API
 * is up: M ticks, or 0 with -DPROMPT. While the API is down nothing
 * arrives; the relist after it delivers at once. */
#ifdef PROMPT
#define DMAX 0
#else
#define DMAX M
#endif

/* fault budgets per run */
#ifndef B_API
#define B_API     1
#endif
#ifndef B_CUTA
#define B_CUTA    1
#endif
#ifndef B_CUTX
#define B_CUTX    1
#endif
#ifndef B_DIE
#define B_DIE     1
#endif
#ifndef B_RESTART
#define B_RESTART 1
#endif
#ifndef B_CTL
#define B_CTL     1
#endif

/* ---- the cluster ---- */
bit  api = 1;       /* the API server answers */
bit  on[3];         /* the node runs (not reset by its watchdog; a reset node stays off) */
bit  cuta[3];       /* cut off from the API only (its peers reach it) */
bit  cutx[3];       /* cut off from the API and from its peers */
bit  faulted[3];    /* ghost (A2): a fault hit this node */

/* ---- each agent (process state, lost when the process dies) ---- */
bit  alive[3];      /* the agent process runs */
bit  armed[3];      /* this process renewed once and holds the watchdog: it feeds, and answers peers */
bit  fen[3];        /* stopped feeding for good (cut off, or asked to) */
bit  owe[3];        /* a round said "stay up": its feed comes with the next iteration (P) */
bit  done[3];       /* the agent's iteration of this tick is done */
bit  ask[3];        /* -DDESIGN_RENEW_THEN_ASK: the round after a failed renewal is still to come */
byte since[3];      /* ticks since this process's last successful renewal, 0..A */
byte wdc[3];        /* ticks since the watchdog was last fed; at WD it resets the node */

/* ---- node 0's fence request, on its agent Lease ---- */
bit  req = 0;       /* the controller wrote fence-request */
bit  acked = 0;     /* the agent wrote fence-ack */

/* ---- the controller (process-local: a new leader starts afresh) ---- */
bit  seen[3];       /* saw a renewal of this agent since it started */
byte age[3];        /* ticks since it saw the agent's Lease renew, or since it started, up to F */
bit  pend[3];       /* the API holds a renewal the controller has not seen */
byte pd[3];         /* ticks that renewal has waited */
byte wage = 0;      /* now - max(L, Q), L of node 0; Q the last tick at which >= QUORUM agents were not fresh */
#ifdef BROKEN_L_ONLY
byte lage = 0;      /* now - L */
#endif
bit  ackseen = 0;
byte ackage = 0;    /* now - ackSeen */
bit  released = 0;  /* node 0's workloads were released: the end of the run */

byte b_api = B_API, b_cuta = B_CUTA, b_cutx = B_CUTX, b_die = B_DIE, b_restart = B_RESTART, b_ctl = B_CTL;
#ifdef BFS_TRAIL
byte stay, pr, wlate, cur; /* breadth-first search takes no hidden variables; these are 0 between steps */
#else
hidden byte stay, pr, wlate, cur;
#endif

#define reach(i)   (api && !cuta[i] && !cutx[i])
#ifndef FAULTS_NODE0
#define tgt(i)     (!released && !mid && on[i] && ((i) != 2 || faulted[1]))   /* nodes 1, 2 are symmetric: node 1 takes the first fault */
#else
#define tgt(i)     (!released && !mid && on[i] && (i) == 0)   /* only node 0 is hit (liveness runs) */
#endif
#define nfaulted   (faulted[0] + faulted[1] + faulted[2])

/* A peer's answer (internal/agent peer.go, peernet.go): only an agent that
 * renewed in this process answers, and only across no cut. */
#ifdef BROKEN_RESTART_ANSWERS
#define talks(j,i) (on[j] && alive[j] && !cutx[j] && !cutx[i])   /* a restarted agent answers before it renewed */
#else
#define talks(j,i) (on[j] && alive[j] && armed[j] && !cutx[j] && !cutx[i])
#endif
#ifdef BROKEN_REACHES_FULL
#define reaches(j) (since[j] < A)          /* a peer "reaches" with the whole API timeout */
#else
#define reaches(j) (since[j] < HALF)       /* agentlease.Reaches */
#endif
#define j1(i) (((i) + 1) % 3)
#define j2(i) (((i) + 2) % 3)
#define peerup(i)  ((talks(j1(i), i) && reaches(j1(i))) || (talks(j2(i), i) && reaches(j2(i))))
#ifdef BROKEN_NO_QUORUM
#define stayup(i)  (!peerup(i))            /* no quorum needed */
#else
#define stayup(i)  (!peerup(i) && 1 + talks(j1(i), i) + talks(j2(i), i) >= QUORUM)   /* agentlease.StayUp */
#endif

#define fresh(i)   (seen[i] && age[i] < F)
#define notfresh   (!fresh(0) + !fresh(1) + !fresh(2))

/* The release rule (decide.AgentFenced), with the live re-read before it:
 * the API holds no renewal the controller has not seen. */
#define ackrule    (ackseen && ackage >= ACKB)
#ifdef BROKEN_L_ONLY
#define boundrule  (lage >= BOUND && !pend[0])
#elif defined(NO_LIVE_READ)
#define boundrule  (wage >= BOUND)            /* A1 still holds: model/README.md */
#else
#define boundrule  (wage >= BOUND && !pend[0])
#endif

#define A1    (!on[0])
#define A2(i) (faulted[i] || nfaulted >= 2)

#ifdef A3
#define calm(j) (on[j] && alive[j] && armed[j] && !cuta[j] && !cutx[j])
ltl a3 { (<>[] (req && api && calm(1) && calm(2))) -> <> released }
#endif

/* Q is recorded whenever the count of agents not fresh may be about to
 * fall: before the Lease events of a tick, and after time moved on. */
inline qcheck() {
#ifndef NOCTL
	if :: notfresh >= QUORUM -> wage = 0 :: else fi
#else
	skip
#endif
}

inline renew(i) {
	since[i] = 0;
	if :: !pend[i] -> pend[i] = 1; pd[i] = 0 :: else fi
}

inline feed(i) {
	wdc[i] = 0
}

/* The round of questions (agentlease.StayUp): stay up (feed now, or with
 * the next iteration: the round takes up to P), or a peer reaches the API
 * (pr), or too few answered (fence). */
inline round(i) {
	if
	:: stayup(i) -> if :: stay = 1 :: owe[i] = 1 fi
	:: !stayup(i) && peerup(i) -> pr = 1
	:: else -> fen[i] = 1
	fi
}

/* -DDESIGN_RENEW_THEN_ASK: the round after a failed renewal, and its feed. */
inline late_round(i) {
	ask[i] = 0;
	if
	:: on[i] && alive[i] ->
		stay = 0; pr = 0;
		round(i);
		if :: pr -> fen[i] = 1 :: else fi;
		if :: !fen[i] && stay -> feed(i) :: else fi;
		stay = 0; pr = 0
	:: else
	fi
}

/* One iteration of agent i (internal/agent loop.go iterate, lease.go): the
 * round once an API timeout passed, the renewal, the feed. A round that
 * finds a peer reaching the API fences only when the renewal right after it
 * fails too; -DCODE_ASK_BEFORE_RENEW fences at once (loop.go today), and
 * -DDESIGN_RENEW_THEN_ASK takes docs/design.md's order: renew, and when that
 * failed, ask, a moment later. */
inline agent(i) {
	if
	:: on[i] && alive[i] && !armed[i] ->          /* start(): no watchdog until a renewal */
		if
		:: reach(i) && i == 0 && req && !acked -> /* firstRenewal: a pending request */
			feed(i); armed[i] = 1; fen[i] = 1;   /* arming pings the watchdog: its last feed */
			renew(i); acked = 1                  /* then the acknowledgement */
		:: reach(i) && i == 0 && req && acked     /* acknowledged in this boot: stays unarmed */
		:: reach(i) && !(i == 0 && req) ->
			renew(i); armed[i] = 1; feed(i)
		:: else                                   /* no renewal: waits, silent */
		fi
	:: on[i] && alive[i] && armed[i] ->
		if :: owe[i] -> owe[i] = 0; if :: !fen[i] -> feed(i) :: else fi :: else fi;
		stay = 0; pr = 0;
#ifndef DESIGN_RENEW_THEN_ASK
		if :: !fen[i] && since[i] >= A -> round(i) :: else fi;   /* 1. the round */
#ifdef CODE_ASK_BEFORE_RENEW
		if :: pr -> fen[i] = 1 :: else fi;
#endif
#endif
		if                                        /* 2. the renewal; a request stops the feeding first */
		:: reach(i) ->
#ifndef BROKEN_ACK_FIRST
			if :: i == 0 && req -> fen[i] = 1; acked = 1 :: else fi;
#else
			if :: i == 0 && req -> acked = 1 :: else fi;
			if :: i == 0 && acked -> if :: fen[i] = 1 :: skip fi :: else fi;   /* stops when it gets to it */
#endif
			renew(i)
		:: else ->
#ifdef BROKEN_ACK_FIRST
			if :: i == 0 && acked -> if :: fen[i] = 1 :: skip fi :: else fi;
#endif
#ifdef DESIGN_RENEW_THEN_ASK
			if :: !fen[i] && since[i] >= A -> ask[i] = 1 :: else fi;
#endif
			if :: pr -> fen[i] = 1 :: else fi     /* a peer reaches the API, this node does not */
		fi;
#ifdef DESIGN_RENEW_THEN_ASK
		if :: ask[i] -> if :: late_round(i) :: skip fi :: else fi;   /* the round now, or after the others */
#endif
		if                                        /* 3. the feed */
		:: !fen[i] && !ask[i] && (since[i] < A || stay) -> feed(i)
		:: else
		fi;
		stay = 0; pr = 0
	:: else
	fi
}

inline reset(i) {
	assert(A2(i));
	on[i] = 0; alive[i] = 0; armed[i] = 0; fen[i] = 0; owe[i] = 0; ask[i] = 0;
	since[i] = 0; wdc[i] = 0; cuta[i] = 0; cutx[i] = 0
}

inline setl() {
#ifdef BROKEN_L_ONLY
	lage = 0
#else
	skip
#endif
}

/* The watch: one stream, in order. A renewal reaches the controller at the
 * end of the tick it was written in, or, when the watch is late (wlate), up
 * to DMAX ticks later: a tick's renewals together (the controller's L and Q
 * read no finer time, and a release after a renewal of node 0 in the same
 * tick is held by the live read). Nothing arrives while the API is down;
 * the relist after it delivers. */
inline deliver(i) {
#ifdef NOCTL
	pend[i] = 0
#else
	if
	:: api && pend[i] && (pd[i] >= DMAX || !wlate) ->
		seen[i] = 1; age[i] = 0; pend[i] = 0; pd[i] = 0;
		if
		:: i == 0 -> wage = 0; setl();
			if :: acked && !ackseen -> ackseen = 1; ackage = 0 :: else fi   /* the write that carried the ack */
		:: else
		fi
	:: else
	fi
#endif
}

inline advance(i) {
	if
	:: on[i] -> wdc[i]++;
		if :: wdc[i] >= WD -> reset(i) :: else fi
	:: else
	fi;
	if :: armed[i] && since[i] < A -> since[i]++ :: else fi;
#ifndef NOCTL
	if :: pend[i] && pd[i] < DMAX -> pd[i]++ :: else fi;
	if :: age[i] < F -> age[i]++ :: else fi
#endif
}

/* A tick: every agent's iteration, then the watch, then time moves on
 * (watchdogs, the agents' and the controller's clocks). The iterations of
 * a tick run in any order, and the API may go down or come back between
 * two of them; they run in the order 0, 1, 2 when that cannot matter: no
 * agent is due for a round of questions (iterations read each other's
 * state only in rounds) and the API cannot change. The other faults and
 * the controller act between ticks. */
#define mid        (done[0] || done[1] || done[2])
#define rounds     ((armed[0] && since[0] >= A && !fen[0]) || (armed[1] && since[1] >= A && !fen[1]) || \
                    (armed[2] && since[2] >= A && !fen[2]) || ask[0] || ask[1] || ask[2])
#define toggles    ((api && b_api > 0) || !api)
#define turn(i)    (!done[i] && (rounds || toggles || (((i) < 1 || done[0]) && ((i) < 2 || done[1]))))

proctype Sys() {
end_sys:
	do
	:: atomic { !released && (turn(0) || turn(1) || turn(2)) ->
		if :: turn(0) -> cur = 0 :: turn(1) -> cur = 1 :: turn(2) -> cur = 2 fi;
		agent(cur); done[cur] = 1; cur = 0 }
	:: atomic { !released && toggles && mid && !(done[0] && done[1] && done[2]) && api && b_api > 0 -> b_api--; api = 0 }
	:: atomic { !released && toggles && mid && !(done[0] && done[1] && done[2]) && !api -> api = 1 }
	:: atomic { !released && done[0] && done[1] && done[2] ->
#ifdef DESIGN_RENEW_THEN_ASK
		do
		:: ask[0] -> cur = 0; late_round(cur)
		:: ask[1] -> cur = 1; late_round(cur)
		:: ask[2] -> cur = 2; late_round(cur)
		:: else -> break
		od;
		cur = 0;
#endif
		done[0] = 0; done[1] = 0; done[2] = 0;
		qcheck();
		if :: wlate = 0 :: DMAX > 0 -> wlate = 1 fi;
		deliver(0); deliver(1); deliver(2);
		wlate = 0;
		advance(0); advance(1); advance(2);
#ifndef NOCTL
		if :: wage < BOUND -> wage++ :: else fi;
#ifdef BROKEN_L_ONLY
		if :: lage < BOUND -> lage++ :: else fi;
#endif
		if :: ackseen && ackage < ACKB -> ackage++ :: else fi;
#endif
		qcheck();
#ifdef A3
		/* the controller re-evaluates at every tick: it releases as soon as the rule lets it */
		if :: api && req && (ackrule || boundrule) -> assert(A1); released = 1 :: else fi;
#endif
		skip }
	od
}

inline fault_on(i) {
	if
	:: tgt(i) && b_cuta > 0 && !cuta[i] -> b_cuta--; cuta[i] = 1; faulted[i] = 1
	:: tgt(i) && b_cutx > 0 && !cutx[i] -> b_cutx--; cutx[i] = 1; faulted[i] = 1
	:: tgt(i) && b_die > 0 && alive[i] ->      /* the process dies; its watchdog keeps running */
		b_die--; alive[i] = 0; armed[i] = 0; fen[i] = 0; owe[i] = 0; ask[i] = 0; since[i] = 0; faulted[i] = 1
	:: !released && !mid && on[i] && !alive[i] && b_restart > 0 ->   /* the DaemonSet restarts it */
		b_restart--; alive[i] = 1;
#ifdef BROKEN_RESTART_FEEDS
		armed[i] = 1; since[i] = 0; feed(i)      /* counts from its start, and feeds */
#else
		skip                                     /* a new process: no renewal of its own yet */
#endif
	:: !released && !mid && cuta[i] -> cuta[i] = 0
	:: !released && !mid && cutx[i] -> cutx[i] = 0
	fi
}

proctype Env() {
end_env:
	do
	:: atomic { !mid && !released && api && b_api > 0 -> b_api--; api = 0 }
	:: atomic { !mid && !released && !api -> api = 1 }
	:: atomic { fault_on(0) }
	:: atomic { fault_on(1) }
	:: atomic { fault_on(2) }
	od
}

/* The agent fence provider, for node 0's incident. */
proctype Ctl() {
end_ctl:
	do
#ifndef NO_REQ
	:: atomic { !mid && api && !req -> req = 1; faulted[0] = 1 }   /* the incident: ask node 0's agent to fence */
#endif
#ifndef NOCTL
	:: atomic { !mid && api && !released && b_ctl > 0 ->           /* a new leader: no history (relists) */
		b_ctl--;
		seen[0] = 0; seen[1] = 0; seen[2] = 0; age[0] = 0; age[1] = 0; age[2] = 0;
		pend[0] = 0; pend[1] = 0; pend[2] = 0; pd[0] = 0; pd[1] = 0; pd[2] = 0;
		wage = 0; ackseen = acked; ackage = 0;
#ifdef BROKEN_L_ONLY
		lage = 0;
#endif
		skip }
	:: atomic { !mid && api && req && !released && (ackrule || boundrule) ->
		assert(A1);
		released = 1 }
#endif
	od
}

init {
	atomic {
		on[0] = 1; on[1] = 1; on[2] = 1;
		alive[0] = 1; alive[1] = 1; alive[2] = 1;
		armed[0] = 1; armed[1] = 1; armed[2] = 1;
		seen[0] = 1; seen[1] = 1; seen[2] = 1;
		run Sys(); run Env(); run Ctl()
	}
}
