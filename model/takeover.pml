/*
 * liberator's takeover protocol, for SPIN.
 *
 * One node N holds the one ReadWriteOnce claim and runs the one copy of its
 * workload. Around it: the API server and the controllers' watches, two
 * controller replicas with leader election, N's fence provider (one class
 * per run: -DCLASS=POWER, WAIT or NONE), the rest of the cluster reduced to
 * a count of other unhealthy nodes, and the scheduler that starts the
 * replacement once the claim is free. Time is a global tick; every clock
 * (the kubelet's renewals, the watchdog, each replica's windows and wait
 * timer) counts those ticks. Counters saturate, so the state space is finite.
 *
 * The leader's decision, step(), is the intended decide.Decide; model/states.md
 * lists its rows. model/README.md maps every actor to the code.
 *
 * Properties: S1..S4 (safety, assertions at the steps that can break them)
 * and l1 (liveness, an LTL claim checked with weak fairness). model/verify.sh
 * runs them all, and the broken variants below (-DBROKEN_...), which must fail.
 */

/* ---- parameters (ticks) ---- */
#ifndef W
#define W       2   /* unhealthyAfter: the whole window without a heartbeat */
#endif
#ifndef WD
#define WD      2   /* watchdog timeout of a wait-class node */
#endif
#ifndef WAIT_T
#define WAIT_T  2   /* the wait provider's safe time, on the acting leader's clock */
#endif
#ifndef SETTLE
#define SETTLE  1   /* storm guard: the unhealthy count must be stable this long */
#endif
#define MAXU    1   /* maxUnhealthy: N plus one other node trips the guard */

#define POWER 1
#define WAIT  2
#define NONE  3
#ifndef CLASS
#define CLASS POWER
#endif

/* budgets of environment events per run (finite, so weak fairness means
 * "eventually the environment settles") */
#ifndef B_CRASH
#define B_CRASH   1
#endif
#ifndef B_POWERON
#define B_POWERON 1
#endif
#ifndef B_CUT
#define B_CUT     1
#endif
#ifndef B_API
#define B_API     1
#endif
#ifndef B_STALL
#define B_STALL   1
#endif
#ifndef B_DEPOSE
#define B_DEPOSE  1
#endif
#ifndef B_BMC
#define B_BMC     1
#endif
#ifndef B_OTHERS
#define B_OTHERS  1
#endif
#ifndef B_DEL
#define B_DEL     1
#endif

/* ---- incident phases (the Takeover) ---- */
#define P_NONE      0   /* no open incident (never opened, or closed before release) */
#define P_DETECTED  1   /* Detected (Failed and Paused before a fence behave alike) */
#define P_FENCING   2   /* Fencing: wait provider counting its safe time */
#define P_FENCED    3   /* Fenced (or FencedUnsafe for class none) */
#define P_RELEASING 4   /* a destructive release step happened (taint on), pods not yet freed */
#define P_RELEASED  5   /* Released / WorkloadsReady: pods and VolumeAttachments deleted */
#define P_DONE      6   /* Recovered after release (terminal for this model) */
#define NOBODY      2

/* ---- the node and its workload ---- */
bit  up = 1;        /* powered and running */
bit  cut = 0;       /* partitioned from the API server and its peers */
bit  renewed = 0;   /* the kubelet renewed its Lease during this tick */
bit  newboot = 0;   /* bootID differs from the one recorded at detection */
byte wd = 0;        /* watchdog: ticks without reaching the API (class wait only) */
bit  ex = 1;        /* the Node object exists */
bit  bound = 1;     /* the workload's pod is bound to N (not yet released) */
bit  taint = 0;     /* out-of-service taint on N (first destructive release step) */
bit  copy = 1;      /* N runs a copy of the workload */
bit  repl = 0;      /* the replacement runs on another node */

/* ---- the API server ---- */
bit  api_up = 1;
byte others = 0;    /* other eligible nodes that are unhealthy (the storm) */
byte holder = 0;    /* holder of the leader Lease: 0, 1 or NOBODY */

/* ---- the Takeover (shared, persisted) ---- */
byte ph = P_NONE;
bit  fenced = 0;    /* a fence succeeded for this incident */
bit  unsafe = 0;    /* fenced by provider none: flagged (FencedUnsafe) */
bit  fpchg = 0;     /* the live Lease/Node heartbeat differs from the detection fingerprint */

/* ---- each controller replica (process-local, lost on a leader change) ---- */
bit  lead[2];       /* believes it leads; a deposed leader keeps this until the next tick */
bit  stall[2];      /* its watch is stalled (detected: no progress) */
bit  lag[2];        /* its cache lags the API server (an event delayed or lost) */
bit  cd[2];         /* its cache shows a heartbeat other than the detection fingerprint (newer, or older when it lags) */
byte age[2];        /* ticks on its own clock since it saw a heartbeat change or restarted the window */
byte wt[2];         /* the wait provider's timer, on its own clock */
byte st[2];         /* ticks since the unhealthy count (others + N stale on its view) last changed */

/* ---- ghosts for the properties ---- */
byte h_age = 0;     /* ticks since N last renewed, or was up and on the network at a tick */

bit  stale0;        /* scratch, always 0 between steps */

/* budgets */
byte b_crash = B_CRASH, b_poweron = B_POWERON, b_cut = B_CUT, b_api = B_API,
     b_stall = B_STALL, b_depose = B_DEPOSE, b_bmc = B_BMC, b_others = B_OTHERS, b_del = B_DEL;

#define reach     (up && !cut && api_up)
#define open      (ph != P_NONE && ph != P_DONE)
#define prerel    (ph == P_DETECTED || ph == P_FENCING || ph == P_FENCED)

/* Safety properties, checked as assertions at the steps that can break them
 * (one exhaustive run checks all four; a violation names its property):
 *   S1  never two running copies of the workload (unless class none, flagged)
 *   S2  no release step unless N was proven off (or class none, flagged)
 *   S3  no power-off of a node that renewed its Lease, or was up and connected,
 *       within the window before the fence
 *   S4  an incident closes unreleased only on a real heartbeat change since
 *       detection, and never after a destructive release step */
#define S1 (!(copy && repl && !unsafe))
#define S2 ((fenced && !copy) || unsafe)
#define S3 (h_age >= W)
#define S4 (fpchg && !taint)

/* L1: if N stays down, the API up, the watches live and the other nodes
 * healthy, the workload eventually runs elsewhere (checked with -a -f; the
 * claim is compiled in with -DL1 only, so safety runs carry no claim). */
#ifdef L1
ltl l1 { (<>[] (!up && api_up && !stall[0] && !stall[1] && others == 0)) -> <> repl }
#endif

/* The replica's window restarts (a heartbeat change seen, or a restart):
 * N stops counting as unhealthy on its view, so the count changed. */
inline restart_window(i) {
	if :: age[i] >= W -> st[i] = 0 :: else fi;
	age[i] = 0
}

/* A relist: the replica's cache catches up with the API server; after a
 * blind period every window restarts (rule a). */
inline relist(i) {
	if
	:: lead[i] ->
		lag[i] = 0;
		cd[i] = (open && fpchg);
#ifndef BROKEN_NO_WINDOW_RESET
		restart_window(i)
#else
		skip
#endif
	:: else
	fi
}

/* A replica becomes leader: no history, every window and the wait timer start afresh. */
inline acquire(i) {
	holder = i; lead[i] = 1;
	lag[i] = 0; cd[i] = (open && fpchg);
	age[i] = 0; wt[i] = 0; st[i] = 0
}

inline forget(i) {
	lead[i] = 0; stall[i] = 0; lag[i] = 0; cd[i] = 0; age[i] = 0; wt[i] = 0; st[i] = 0
}

inline tick_replica(i) {
	stale0 = (age[i] >= W);
	if
	:: lead[i] && holder != i -> forget(i)   /* a deposed leader's renew deadline passed: it stops */
	:: else
	fi;
	if
	:: lead[i] ->
		if
#ifndef BROKEN_NO_WINDOW_RESET
		:: !api_up || stall[i] -> age[i] = 0   /* blind: the window cannot run */
#endif
		:: else -> if :: age[i] < W -> age[i]++ :: else fi
		fi;
#if CLASS == WAIT
		if :: wt[i] < WAIT_T -> wt[i]++ :: else fi;
#endif
		/* the count changes when N's staleness on this view changes */
		if
		:: (age[i] >= W) != stale0 -> st[i] = 0
		:: else -> if :: st[i] < SETTLE -> st[i]++ :: else fi
		fi
	:: else
	fi
}

/* Closing an incident before release (Abort). */
inline abort_incident() {
	assert(S4);
	ph = P_NONE; fenced = 0; unsafe = 0; fpchg = 0; cd[0] = 0; cd[1] = 0
}

/* The live re-read shows a heartbeat other than the detection fingerprint.
 * With the Node object present the node is alive: HeartbeatResumed. With the
 * Node object gone (rule d) nothing proves it alive or dead: the incident stays
 * open, back to Detected with the live fingerprint, every window restarted, so
 * the node is fenced by name once a whole window passes without a change. */
inline live_changed(i) {
	if
	:: ex -> abort_incident()
	:: else ->
		ph = P_DETECTED; fenced = 0; unsafe = 0; fpchg = 0; cd[0] = 0; cd[1] = 0;
		restart_window(0); restart_window(1); wt[0] = 0; wt[1] = 0
	fi
}

/* The first destructive release step (taint), right after the live re-read. */
inline release_start() {
	assert(S2);
	taint = 1; ph = P_RELEASING
}

/* ---- the leader's decision and action: one atomic step ---- */
inline step(i) {
	if
	:: ph == P_NONE ->
		/* Open only when this leader saw no heartbeat change for the whole window on
		 * its own clock (age restarts on leadership and after blindness). NotReady
		 * with a renewing Lease is only reported: the decision reads the Lease. */
		if
		:: ex && age[i] >= W ->
			ph = P_DETECTED; fenced = 0; unsafe = 0; newboot = 0;
			fpchg = lag[i];           /* the fingerprint is the cache's; the API may be ahead */
			cd[i] = 0;
			if
			:: lead[1-i] && !lag[1-i] -> cd[1-i] = lag[i]
			:: lead[1-i] && lag[1-i] && !lag[i] -> cd[1-i] = 1
			:: lead[1-i] && lag[1-i] && lag[i] -> if :: cd[1-i] = 0 :: cd[1-i] = 1 fi
			:: else -> cd[1-i] = 0
			fi;
			wt[0] = 0; wt[1] = 0
		:: else   /* None: Healthy / WithinGraceWindow / NotReady reported */
		fi
	:: ph == P_DONE -> skip
	:: ph == P_RELEASED ->
		if
		:: repl && ex && cd[i] && age[i] < W && (newboot || CLASS == NONE) ->
			ph = P_DONE; taint = 0          /* Recover: taint removed, incident closed */
		:: else                             /* TrackWorkloads / AwaitingNodeReturn / AwaitingReboot */
		fi
	:: ph == P_RELEASING ->
		/* rolls forward: no abort once a destructive step happened (rule g) */
		if
		:: others + (age[i] >= W) > MAXU    /* Pause: StormGuard */
		:: else -> assert(S2);
			bound = 0; ph = P_RELEASED      /* pods force-deleted, VolumeAttachments deleted */
		fi
	:: prerel ->
		if
		:: cd[i] ->
			/* the cache shows a heartbeat other than the detection fingerprint: confirm
			 * by a live re-read (a lagging cache can hold an older one) */
			if
			:: fpchg -> live_changed(i)      /* HeartbeatResumed (or re-detect, Node gone) */
			:: else -> cd[i] = 0            /* None: the cache was behind, not the node alive */
			fi
#ifdef BROKEN_FRESH_LEADER_ABORTS
		:: !cd[i] && age[i] < W && ph != P_FENCING -> abort_incident()  /* "not unhealthy" on a fresh window */
#endif
#ifdef BROKEN_ABORT_ON_NODE_DELETED
		:: !cd[i] && !ex -> abort_incident()    /* NodeDeleted: closed without a fence */
#endif
		:: else ->
			if
			:: others + (age[i] >= W) > MAXU  /* Pause: StormGuard (nothing acts) */
			:: else ->
				if
				:: ph == P_FENCED ->
					/* live re-read right before release (rule b); a deleted Node is released by name */
					if
					:: fpchg -> live_changed(i)
					:: else -> release_start()
					fi
				:: ph == P_FENCING ->
					if
					:: wt[i] >= WAIT_T ->   /* the safe time passed on this leader's clock */
						if
						:: fpchg -> live_changed(i)
						:: else -> fenced = 1; ph = P_FENCED
						fi
					:: else                 /* None: waiting */
					fi
				:: ph == P_DETECTED ->
					if
					:: age[i] < W           /* None: this leader's own window has not elapsed (fresh, or after blindness) */
					:: age[i] >= W && st[i] < SETTLE   /* Pause: the unhealthy count is not settled */
					:: age[i] >= W && st[i] >= SETTLE ->
#ifdef BROKEN_RELEASE_WITHOUT_FENCE
						if
						:: fpchg -> live_changed(i)
						:: else -> release_start()
						fi
#else
						/* live re-read right before fencing (rule b) */
#ifdef BROKEN_FENCE_ON_STALE_CACHE
						if
						:: false -> skip
#else
						if
						:: fpchg -> live_changed(i)
#endif
						:: else ->
#if CLASS == POWER
							if
							:: b_bmc > 0 -> b_bmc--   /* BMC fails: Failed, retried */
							:: true ->
								assert(S3);
								up = 0; copy = 0; wd = 0;   /* off, read back */
								fenced = 1; ph = P_FENCED
							fi
#elif CLASS == WAIT
							/* the safe time starts now, on this leader's clock, its own window having elapsed */
							ph = P_FENCING; wt[0] = 0; wt[1] = 0
#else
							fenced = 1; unsafe = 1; ph = P_FENCED   /* FencedUnsafe, flagged */
#endif
						fi
#endif
					fi
				fi
			fi
		fi
	fi
}

/* ---- processes ---- */

proctype Clock() {
end_clock:
	do
	:: atomic { !(reach && !renewed) && !(wd >= WD) ->
		if :: up && !cut -> h_age = 0 :: else -> if :: h_age < W -> h_age++ :: else fi fi;
#if CLASS == WAIT
		if :: up && !reach -> wd++ :: else -> wd = 0 fi;
#endif
		renewed = 0;
		tick_replica(0);
		tick_replica(1);
		stale0 = 0
	}
	od
}

proctype Node() {
end_node:
	do
	:: atomic { reach && !renewed ->    /* the kubelet renews its Lease and syncs its pods */
		renewed = 1; h_age = 0; wd = 0;
		ex = 1;                         /* re-registers a deleted Node */
		if :: open -> fpchg = 1 :: else fi;
		lag[0] = lag[0] || lead[0]; lag[1] = lag[1] || lead[1];
		copy = (bound && !taint);
		assert(S1) }
	:: atomic { up && b_crash > 0 -> b_crash--; up = 0; copy = 0; wd = 0 }   /* power loss */
	:: atomic { !up && b_poweron > 0 -> b_poweron--; up = 1; newboot = 1; wd = 0 }   /* power back: new bootID */
	:: atomic { !cut && b_cut > 0 -> b_cut--; cut = 1 }
	:: atomic { cut -> cut = 0 }
	:: atomic { up && wd >= WD -> copy = 0; newboot = 1; wd = 0 }   /* the watchdog fires: reboot */
	:: atomic { ex && open && b_del > 0 -> b_del--; ex = 0 }      /* someone deletes the Node object */
	od
}

proctype Env() {
end_env:
	do
	:: atomic { api_up && b_api > 0 -> b_api--; api_up = 0 }
	:: atomic { !api_up -> api_up = 1; relist(0); relist(1) }
	:: atomic { api_up && lead[0] && !stall[0] && b_stall > 0 -> b_stall--; stall[0] = 1 }
	:: atomic { api_up && lead[1] && !stall[1] && b_stall > 0 -> b_stall--; stall[1] = 1 }
	:: atomic { stall[0] -> stall[0] = 0; relist(0) }
	:: atomic { stall[1] -> stall[1] = 0; relist(1) }
	:: atomic { others == 0 && b_others > 0 -> b_others--; others = 1; st[0] = 0; st[1] = 0 }
	:: atomic { others == 1 -> others = 0; st[0] = 0; st[1] = 0 }
	:: atomic { holder != NOBODY && b_depose > 0 -> b_depose--; holder = NOBODY }   /* the leader misses its renew deadline */
	od
}

proctype Elector() {
end_elector:
	do
	:: atomic { holder == NOBODY && api_up && !lead[0] -> acquire(0) }
	:: atomic { holder == NOBODY && api_up && !lead[1] -> acquire(1) }
	od
}

/* The informer of each replica: delayed or lost events arrive eventually (coalesced). */
proctype Watch() {
end_watch:
	do
	:: atomic { lead[0] && lag[0] && api_up && !stall[0] -> lag[0] = 0; cd[0] = (open && fpchg); restart_window(0) }
	:: atomic { lead[1] && lag[1] && api_up && !stall[1] -> lag[1] = 0; cd[1] = (open && fpchg); restart_window(1) }
	od
}

/* The StatefulSet controller and scheduler: the claim is free, a replacement starts elsewhere. */
proctype Kube() {
end_kube:
	do
	:: atomic { !bound && api_up && !repl -> repl = 1; assert(S1) }
	od
}

proctype Ctl(byte i) {
end_ctl:
	do
	:: atomic { lead[i] && api_up -> step(i) }
	od
}

init {
	atomic {
		lead[0] = 1;      /* replica 0 leads at start, with a fresh view */
		run Clock(); run Node(); run Env(); run Elector(); run Watch(); run Kube();
		run Ctl(0); run Ctl(1)
	}
}
