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
 * Properties: S1..S5 (safety, assertions at the steps that can break them)
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
#define HALF    (W/2) /* half the window: a node silent this long is a suspect */
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
bit  taint = 0;     /* liberator's taint on N (first destructive release step; the out-of-service taint follows the pods' release) */
bit  copy = 1;      /* N runs a copy of the workload */
bit  repl = 0;      /* the replacement runs on another node */

/* ---- the API server ---- */
bit  api_up = 1;
bit  osil = 0;      /* the other eligible node O is silent (cut off with N, or dead): the storm */
byte holder = 0;    /* holder of the leader Lease: 0, 1 or NOBODY */

/* ---- the Takeover (shared, persisted) ---- */
byte ph = P_NONE;
bit  fenced = 0;    /* a fence succeeded for this incident */
bit  unsafe = 0;    /* fenced by provider none with releaseUnproven: flagged (FencedUnsafe); an operator's confirm-off is a CLASS POWER fence (model/README.md) */
bit  fpchg = 0;     /* the live Lease/Node heartbeat differs from the detection fingerprint */

/* ---- each controller replica (process-local, lost on a leader change) ---- */
bit  lead[2];       /* believes it leads; a deposed leader keeps this until the next tick */
bit  stall[2];      /* its watch is stalled (detected: no progress) */
bit  lag[2];        /* its cache lags the API server (an event delayed or lost) */
bit  cd[2];         /* its cache shows a heartbeat other than the detection fingerprint (newer, or older when it lags) */
byte age[2];        /* ticks on its own clock since it saw a heartbeat change or restarted the window */
byte wt[2];         /* the wait provider's timer, on its own clock */
byte oage[2];       /* ticks on its own clock since it saw O's Lease renew (restarted like age) */

/* ---- ghosts for the properties ---- */
byte h_age = 0;     /* ticks since N last renewed, or was up and on the network at a tick while the API was down */
byte o_age = 0;     /* ticks since O last renewed */

/* budgets */
byte b_crash = B_CRASH, b_poweron = B_POWERON, b_cut = B_CUT, b_api = B_API,
     b_stall = B_STALL, b_depose = B_DEPOSE, b_bmc = B_BMC, b_others = B_OTHERS, b_del = B_DEL;

#define reach     (up && !cut && api_up)
#define open      (ph != P_NONE && ph != P_DONE)
#define prerel    (ph == P_DETECTED || ph == P_FENCING || ph == P_FENCED)

/* The guards of decide.guards on replica i's view: blind (Cluster.Blind; a
 * stalled watch), or the storm guard: unhealthy plus suspect (silent for half
 * the window) eligible nodes above maxUnhealthy (Unhealthy+Suspect >
 * MaxUnhealthy). N counts while its incident is open, with or without its
 * Node object. An API that fails stops every step (Ctl). */
#define blind(i)  (stall[i])
#if defined(CODE_COUNT_SKIPS_DELETED)
#define storm(i)  ((ex && age[i] >= HALF) + (oage[i] >= HALF) > MAXU)   /* guards.go count today */
#elif !defined(BROKEN_NO_LOOKAHEAD)
#define storm(i)  ((age[i] >= HALF) + (oage[i] >= HALF) > MAXU)
#else
#define storm(i)  ((ex && age[i] >= W) + (oage[i] >= W) > MAXU)   /* only the unhealthy: no suspects */
#endif
#define guard(i)  (blind(i) || storm(i))

/* Safety properties, checked as assertions at the steps that can break them
 * (one exhaustive run checks all five; a violation names its property):
 *   S1  never two running copies of the workload (unless class none, flagged)
 *   S2  no release step unless N was proven off (or class none, flagged)
 *   S3  no power-off of a node that renewed its Lease, or was up and on the
 *       network while the API was down (so could not renew), within the
 *       window before the fence
 *   S4  an incident closes unreleased only on a real heartbeat change since
 *       detection, and never after a destructive release step
 *   S5  storm: N is not fenced while the other node
 *       has been silent for half a window too (more than maxUnhealthy) */
#define S1 (!(copy && repl && !unsafe))
#define S2 ((fenced && !copy) || unsafe)
#define S3 (h_age >= W)
#define S4 (fpchg && !taint)
#define S5 (!(osil && o_age >= HALF))

/* L1: if N stays down, the API up, the watches live and the other nodes
 * healthy, the workload eventually runs elsewhere (checked with -a -f; the
 * claim is compiled in with -DL1 only, so safety runs carry no claim). */
#ifdef L1
ltl l1 { (<>[] (!up && api_up && !stall[0] && !stall[1] && !osil)) -> <> repl }
#endif

/* The replica's window for N restarts (a heartbeat change seen, or a restart). */
inline restart_window(i) {
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
		restart_window(i); oage[i] = 0
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
	age[i] = 0; wt[i] = 0; oage[i] = 0
}

inline forget(i) {
	lead[i] = 0; stall[i] = 0; lag[i] = 0; cd[i] = 0; age[i] = 0; wt[i] = 0; oage[i] = 0
}

inline tick_replica(i) {
	if
	:: lead[i] && holder != i -> forget(i)   /* a deposed leader's renew deadline passed: it stops */
	:: else
	fi;
	if
	:: lead[i] ->
		if
#ifndef BROKEN_NO_WINDOW_RESET
		:: !api_up || stall[i] -> age[i] = 0; oage[i] = 0   /* blind: no window can run */
#endif
		:: else ->
			if :: age[i] < W -> age[i]++ :: else fi;
			if :: osil && oage[i] < W -> oage[i]++ :: !osil -> oage[i] = 0 :: else fi
		fi;
#if CLASS == WAIT
		if :: wt[i] < WAIT_T -> wt[i]++ :: else fi;
#endif
	:: else
	fi
}

/* Closing an incident before release (Abort). */
inline abort_incident() {
	assert(S4);
	ph = P_NONE; fenced = 0; unsafe = 0; fpchg = 0; cd[0] = 0; cd[1] = 0
}

/* A deleted Node whose live Lease differs from the detection fingerprint
 * (rule d): nothing proves the node alive or dead, so the incident is neither
 * closed nor acted on: it stays open, back to Detected with the live
 * fingerprint, every window restarted, so the node is fenced by name once a
 * whole window passes without a renewal ("re-detect"). */
inline redetect() {
	ph = P_DETECTED; fenced = 0; unsafe = 0; fpchg = 0; cd[0] = 0; cd[1] = 0;
	restart_window(0); restart_window(1); wt[0] = 0; wt[1] = 0
}

/* The first destructive release step (taint), right after the live re-read. */
inline release_start() {
	assert(S2);
	taint = 1; ph = P_RELEASING
}

/* Fence: the live re-read (decide.BeforeFence) happened; the provider acts. */
inline fence_start(i) {
	assert(S5);
#if CLASS == POWER
	if
	:: b_bmc > 0 -> b_bmc--   /* BMC fails: Failed, retried */
	:: true ->
		assert(S3);
		up = 0; copy = 0; wd = 0;   /* off, read back */
		fenced = 1; ph = P_FENCED
	fi
#elif CLASS == WAIT
	/* the safe time starts now, on this leader's clock (callFencer, firstSeen) */
	ph = P_FENCING; wt[0] = 0; wt[1] = 0
#else
	fenced = 1; unsafe = 1; ph = P_FENCED   /* FencedUnsafe, flagged */
#endif
}

/* ---- the leader's decision and action: one atomic step ----
 * Laid out as decide.go: decideNew, decideOpen (Recovered, Released,
 * ReleaseStarted, then before release), decideGone. The row names of
 * model/states.md are in the comments; conformance_test.go transcribes
 * this inline line by line. */
inline step(i) {
	if
	:: ph == P_NONE ->                                          /* decideNew */
		if
		:: !ex                                                  /* N3 None (Closed) */
		:: ex && age[i] < W                                     /* N2 None (Healthy, WithinGraceWindow, NotReady with a renewing Lease) */
		:: ex && age[i] >= W && blind(i)                        /* N4 None (ViewBlind: nothing opened on a blind view) */
		:: ex && age[i] >= W && !blind(i) ->                    /* N1 Open (LeaseExpired) */
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
		fi
	:: ph == P_DONE -> skip                                     /* C1 None (Closed) */
	:: ph == P_RELEASED ->                                      /* decideReleased */
		if
		:: !repl                                                /* D1 TrackWorkloads */
		:: repl && ex && cd[i] && age[i] < W && (newboot || CLASS == NONE) ->
			ph = P_DONE; taint = 0                              /* D2 Recover: taint removed, incident closed */
		:: else                                                 /* D3 None (AwaitingNodeReturn / AwaitingReboot) */
		fi
	:: ph == P_RELEASING ->                                     /* ReleaseStarted: rolls forward (rule g) */
		if
		:: blind(i)                                             /* R1 Pause (ViewBlind); API failing: no step at all */
		:: else -> assert(S2);                                  /* R2 Release: whatever the storm, heartbeat, Node, window */
			bound = 0; ph = P_RELEASED                          /* pods force-deleted, VolumeAttachments deleted */
		fi
	:: prerel && ex ->                                          /* decideOpen, before release, the Node exists */
		if
		:: cd[i] ->                                             /* Decide: Abort/HeartbeatResumed on the cache; ConfirmResumed reads live */
			if
			:: fpchg -> abort_incident()                        /* P1 Abort (HeartbeatResumed) */
			:: else -> cd[i] = 0                                /* P2 None (CacheLags: the cache held an older heartbeat) */
			fi
#ifdef BROKEN_FRESH_LEADER_ABORTS
		:: !cd[i] && age[i] < W && ph != P_FENCING -> abort_incident()  /* "not unhealthy" on a fresh window */
#endif
		:: !cd[i] && guard(i)                                   /* P3 Pause (ViewBlind, StormGuard) */
		:: !cd[i] && !guard(i) && ph == P_FENCED ->             /* BeforeRelease: the live re-read (rule b) */
			if
			:: fpchg -> abort_incident()                        /* F1 Abort (HeartbeatResumed) */
			:: else -> release_start()                          /* F2 Release: first destructive step */
			fi
		:: !cd[i] && !guard(i) && ph != P_FENCED && age[i] < W  /* E1, W1 None (WithinGraceWindow): fresh leader, after blindness. Never Abort */
		:: !cd[i] && !guard(i) && ph == P_FENCING && age[i] >= W ->  /* Fence: the provider again (no live read) */
			if
			:: wt[i] >= WAIT_T -> fenced = 1; ph = P_FENCED     /* W3 Fenced: the safe time passed on this leader's clock */
			:: else                                             /* W2 None: waiting */
			fi
		:: !cd[i] && !guard(i) && ph == P_DETECTED && age[i] >= W ->
#ifdef BROKEN_RELEASE_WITHOUT_FENCE
			if
			:: fpchg -> abort_incident()
			:: else -> release_start()
			fi
#else
			if                                                  /* BeforeFence: the live re-read (rule b) */
#ifndef BROKEN_FENCE_ON_STALE_CACHE
			:: fpchg -> abort_incident()                        /* E2 Abort (HeartbeatResumed) */
#endif
			:: else -> fence_start(i)                           /* E3 power, E4 wait, E5 none: Fence */
			fi
#endif
		fi
	:: prerel && !ex ->                                         /* decideGone: the Node object was deleted */
		if
#ifdef BROKEN_ABORT_ON_NODE_DELETED
		:: true -> abort_incident()                             /* NodeDeleted: closed without a fence */
#else
		:: guard(i)                                             /* G1 Pause (ViewBlind, StormGuard) */
		:: !guard(i) && ph == P_FENCED ->                       /* BeforeRelease on a live read that finds no Node */
#ifndef CODE_GONE
			if
			:: fpchg -> redetect()                              /* G2 None: the live Lease renewed since detection: re-detect */
			:: else -> release_start()                          /* G3 Release by name (NodeDeleted) */
			fi
#else
			release_start()                                     /* the code today: no live Lease read */
#endif
		:: !guard(i) && ph != P_FENCED && age[i] < W            /* G4 None (WithinGraceWindow): the Lease renewed within the window */
		:: !guard(i) && ph == P_FENCING && age[i] >= W ->
			if
			:: wt[i] >= WAIT_T -> fenced = 1; ph = P_FENCED     /* G5 Fenced */
			:: else                                             /* G6 None: waiting */
			fi
		:: !guard(i) && ph == P_DETECTED && age[i] >= W ->     /* BeforeFence on a live read that finds no Node */
#ifndef CODE_GONE
			if
			:: fpchg -> redetect()                              /* G7 None: the live Lease renewed since detection: re-detect */
			:: else -> fence_start(i)                           /* G8 Fence by name */
			fi
#else
			fence_start(i)                                      /* the code today: no live Lease read */
#endif
#endif
		fi
	fi
}

/* ---- processes ---- */

proctype Clock() {
end_clock:
	do
	:: atomic { !(reach && !renewed) && !(wd >= WD) ->
		/* a node up and on the network while the API is down could not renew: it counts as renewed */
		if :: up && !cut && !api_up -> h_age = 0 :: else -> if :: h_age < W -> h_age++ :: else fi fi;
#if CLASS == WAIT
		if :: up && !reach -> wd++ :: else -> wd = 0 fi;
#endif
		renewed = 0;
		if :: osil && o_age < W -> o_age++ :: !osil -> o_age = 0 :: else fi;
		tick_replica(0);
		tick_replica(1)
	}
	od
}

proctype Node() {
end_node:
	do
	:: atomic { reach && !renewed ->    /* the kubelet renews its Lease and syncs its pods */
		renewed = 1; h_age = 0; wd = 0;
		if :: ex = 1 :: true fi;        /* a deleted Node may re-register, or only its Lease renew */
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
	:: atomic { !osil && b_others > 0 -> b_others--; osil = 1 }   /* O goes silent: cut off (with N or not), or dead */
	:: atomic { osil -> osil = 0; o_age = 0; oage[0] = 0; oage[1] = 0 }   /* O renews again (seen at once) */
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
