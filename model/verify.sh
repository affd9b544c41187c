#!/usr/bin/env bash
# Checks the SPIN models of model/: takeover.pml (the takeover protocol:
# S1-S5 safety, exhaustive, and L1 liveness under weak fairness, for each
# fence class) and agent.pml (the liberator agent's self-fencing and the
# agent fence provider's release rule: A1-A2 safety, A3 liveness), then
# each broken variant, which must fail with a counterexample trail. Exits
# non-zero if a property fails on the intended model or a broken variant
# passes.
#
#   model/verify.sh            both models (about 2 minutes on 2 cores)
#   model/verify.sh agent      only agent.pml (or: takeover)
#   KEEP=1 model/verify.sh     keep the work directory (trails, pan sources)
#   JOBS=1 model/verify.sh     one search at a time (default: 2 in parallel)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
part=${1:-all}
case $part in all | takeover | agent) ;; *) echo "verify-model: unknown part $part (want takeover or agent)" >&2; exit 2 ;; esac
command -v spin >/dev/null || { echo "verify-model: spin is not installed (Debian package spin)" >&2; exit 1; }
command -v "${CC:-gcc}" >/dev/null || { echo "verify-model: no C compiler (${CC:-gcc})" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/liberator-model.XXXXXX")
if [[ -z ${KEEP:-} ]]; then trap 'rm -rf "$work"' EXIT; else echo "work directory: $work"; fi

jobs_max=${JOBS:-2}
start_all=$(date +%s)
order=()

# run NAME CHECKS EXPECT "SPIN_DEFINES" "CC_FLAGS" PAN_FLAGS...
#   EXPECT: pass (no error, search complete) or fail (an error and a trail)
# Checks the model $pml. Runs in the background (at most JOBS at once); its
# line goes to $work/NAME/result.
run() {
	order+=("$1")
	while [[ $(jobs -rp | wc -l) -ge $jobs_max ]]; do wait -n || true; done
	one "$@" &
}

one() {
	set +e +o pipefail
	local failures=0
	local name=$1 checks=$2 expect=$3 defs=$4 ccflags=$5
	shift 5
	local dir=$work/$name
	mkdir -p "$dir"
	cp "$here/$pml" "$dir/"
	(cd "$dir" && spin -a $defs "$pml" >spin.out 2>&1) || { echo "$name: spin -a failed" >"$dir/result"; cat "$dir/spin.out" >>"$dir/result"; echo 1 >"$dir/failed"; return; }
	(cd "$dir" && "${CC:-gcc}" -O2 -w $ccflags -o pan pan.c) || { echo "$name: compiling pan failed" >"$dir/result"; echo 1 >"$dir/failed"; return; }
	local t0 t1 rc=0
	t0=$(date +%s.%N)
	(cd "$dir" && ./pan -m1000000 "$@" >pan.out 2>&1) || rc=$?
	t1=$(date +%s.%N)
	local out=$dir/pan.out
	local errors states depth secs result
	errors=$(grep -o 'errors: [0-9]*' "$out" | awk '{print $2}' | tail -1)
	states=$(grep 'states, stored' "$out" | awk '{print $1}' | tail -1)
	depth=$(grep -o 'depth reached [0-9]*' "$out" | awk '{print $3}' | tail -1)
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1fs", b-a}')
	local what
	what=$(grep -m1 -o 'assertion violated .*\|acceptance cycle\|non-progress cycle\|invalid end state' "$out" || true)
	if [[ $expect == pass ]]; then
		if [[ $rc -eq 0 && ${errors:-x} == 0 ]] && ! grep -q 'max search depth too small\|Search not completed' "$out"; then
			result="pass"
		else
			result="FAIL (${what:-see $out})"
			failures=$((failures + 1))
		fi
	else
		if [[ ${errors:-0} -ge 1 && -f $dir/$pml.trail ]]; then
			result="refuted as expected: ${what}"
		else
			result="NOT REFUTED: the broken variant passed"
			failures=$((failures + 1))
		fi
	fi
	printf '%-38s %-7s %-12s %6s %7s  %s\n' "$name" "$checks" "${states:-?}" "${depth:-?}" "$secs" "$result" >"$dir/result"
	echo "$failures" >"$dir/failed"
}

report() {
	local name
	printf '%-38s %-7s %-12s %6s %7s  %s\n' "run" "checks" "states" "depth" "time" "result"
	for name in "${order[@]}"; do
		[[ $name == == ]] && continue
		if [[ -f $work/$name/result ]]; then cat "$work/$name/result"; else echo "$name: no result"; failures=$((failures + 1)); fi
		failures=$((failures + $(cat "$work/$name/failed" 2>/dev/null || echo 1)))
	done
}

if [[ $part != agent ]]; then
pml=takeover.pml
for class in POWER WAIT NONE; do
	# Safety: one exhaustive search checks the five assertions S1-S5.
	run "safety-$class" "S1-S5" pass "-DCLASS=$class" "-DSAFETY"
done
for class in POWER WAIT NONE; do
	# Liveness: guards clear (no storm, no stalled watch); the API may still
	# go down once, the leader change, the node be cut, deleted, powered on.
	run "liveness-$class" "L1" pass "-DCLASS=$class -DL1 -DB_OTHERS=0 -DB_STALL=0" "-DNFAIR=3" -a -f
done

run "broken-release-without-fence" "S2" fail "-DCLASS=POWER -DBROKEN_RELEASE_WITHOUT_FENCE" "-DSAFETY"
run "broken-fence-on-stale-cache" "S3" fail "-DCLASS=POWER -DBROKEN_FENCE_ON_STALE_CACHE" "-DSAFETY"
run "broken-no-window-reset" "S3" fail "-DCLASS=POWER -DBROKEN_NO_WINDOW_RESET" "-DSAFETY"
run "broken-fresh-leader-aborts" "S4" fail "-DCLASS=POWER -DBROKEN_FRESH_LEADER_ABORTS" "-DSAFETY"
run "broken-abort-on-node-deleted" "S4" fail "-DCLASS=WAIT -DBROKEN_ABORT_ON_NODE_DELETED" "-DSAFETY"
run "broken-no-lookahead" "S5" fail "-DCLASS=POWER -DBROKEN_NO_LOOKAHEAD" "-DSAFETY"
# The code as it stands where it differs from the model (open defects, model/README.md):
run "code-gone-node-no-live-lease" "S3" fail "-DCLASS=POWER -DCODE_GONE" "-DSAFETY"
run "code-count-skips-deleted" "S5" fail "-DCLASS=POWER -DCODE_COUNT_SKIPS_DELETED" "-DSAFETY"

fi

if [[ $part != takeover ]]; then
pml=agent.pml
# Liveness: node 0 cut off or its agent dead (and restarted), the API down
# once, a new leader; the watch delivers within the tick (see the limit).
run "agent-liveness" "A3" pass "-DA3 -DPROMPT -DFAULTS_NODE0 -DB_CUTA=0" "-DNFAIR=3" -a -f
# Safety. The node faults come in pairs (with an API outage and the fence
# request): all of them at once is out of reach (17 million states, over a
# minute); A2 alone, without the controller, takes them all. A controller
# restart only makes it more careful (model/README.md) and has its own run.
run "agent-safety-agents-all-faults" "A2" pass "-DNOCTL" "-DSAFETY"
run "agent-safety-cut-api-cut-all" "A1-A2" pass "-DB_DIE=0 -DB_RESTART=0 -DB_CTL=0" "-DSAFETY"
run "agent-safety-cut-api-agent-dies" "A1-A2" pass "-DB_CUTX=0 -DB_CTL=0" "-DSAFETY"
run "agent-safety-cut-all-agent-dies" "A1-A2" pass "-DB_CUTA=0 -DB_CTL=0" "-DSAFETY"
run "agent-safety-cut-all-new-leader" "A1-A2" pass "-DB_CUTA=0 -DB_DIE=0 -DB_RESTART=0" "-DSAFETY"
# The small searches below are compiled with -O0: compiling pan takes
# longer than they do.
only_outage="-DNO_REQ -DB_CUTA=0 -DB_CUTX=0 -DB_DIE=0 -DB_RESTART=0 -DB_CTL=0"
run "agent-safety-no-fault" "A2" pass "$only_outage" "-DSAFETY -O0"
run "agent-broken-l-only" "A1" fail "-DBROKEN_L_ONLY -DB_CUTX=0 -DB_DIE=0 -DB_RESTART=0 -DB_CTL=0" "-DSAFETY -O0"
run "agent-broken-bound-no-watchdog" "A1" fail "-DBROKEN_BOUND_NO_WD -DB_CUTA=0 -DB_DIE=0 -DB_RESTART=0 -DB_CTL=0" "-DSAFETY -O0"
run "agent-broken-no-quorum" "A1" fail "-DBROKEN_NO_QUORUM -DB_CUTA=0 -DB_DIE=0 -DB_RESTART=0 -DB_CTL=0" "-DSAFETY -O0"
run "agent-broken-ack-first" "A1" fail "-DBROKEN_ACK_FIRST -DB_CUTA=0 -DB_CUTX=0 -DB_DIE=0 -DB_RESTART=0 -DB_CTL=0" "-DSAFETY -O0"
run "agent-broken-restart-feeds" "A1" fail "-DBROKEN_RESTART_FEEDS -DB_API=0 -DB_CUTA=0 -DB_CUTX=0 -DB_CTL=0" "-DSAFETY -O0"
run "agent-broken-reaches-whole-timeout" "A2" fail "-DBROKEN_REACHES_FULL $only_outage" "-DSAFETY -O0"
run "agent-broken-restart-answers" "A2" fail "-DBROKEN_RESTART_ANSWERS -DNO_REQ -DB_CUTA=0 -DB_CUTX=0 -DB_CTL=0" "-DSAFETY -O0"
run "agent-broken-watchdog-under-2C+P" "A2" fail "-DWD=2 $only_outage" "-DSAFETY -O0"
# The design and the code as they stand where they differ from the model
# (model/README.md, "What the agent model found"):
run "agent-design-renew-then-ask" "A2" fail "-DDESIGN_RENEW_THEN_ASK $only_outage" "-DSAFETY -O0"
run "agent-code-ask-before-renew" "A2" fail "-DCODE_ASK_BEFORE_RENEW $only_outage" "-DSAFETY -O0"
# Limits of the rule, shown: a watch late by the margin at every tick keeps
# Q fresh, so a cut-off node is never released; an API that comes back
# for a moment and goes again resets a node.
run "agent-limit-late-watch-liveness" "A3" fail "-DA3 -DFAULTS_NODE0 -DB_CUTA=0 -DB_DIE=0 -DB_RESTART=0 -DB_CTL=0" "-DNFAIR=3 -O0" -a -f
run "agent-limit-api-flap" "A2" fail "-DB_API=2 $only_outage" "-DSAFETY -O0"
fi
wait
failures=0
echo "intended models: *safety-* and *liveness* must pass; broken-*, code-*, design-* and limit-* variants must be refuted with a trail"
report
echo "total: $(( $(date +%s) - start_all ))s (JOBS=$jobs_max)"
if [[ $failures -gt 0 ]]; then
	echo "verify-model: $failures run(s) did not give the expected result" >&2
	exit 1
fi
echo "verify-model: ok"
