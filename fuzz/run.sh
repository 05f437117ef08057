#!/bin/sh
# Runs the libFuzzer targets of fuzz/, one at a time, each for a bounded
# time, and prints the executions of each.
#
#   fuzz/run.sh BUILD_DIR SECONDS [TARGET...]     (default: every target)
#
# Environment: FUZZ_RUNS caps executions per target (stops earlier when
# reached); FUZZ_NICE (default 10) is the nice level. Each target starts
# from its seed corpus fuzz/corpus/TARGET and the reproducers in
# fuzz/regress/TARGET (run first, each must pass), and grows a working
# corpus in BUILD_DIR/corpus/TARGET, so the committed seeds stay as the
# generator wrote them. A crash, leak, timeout or out-of-memory leaves its
# input in BUILD_DIR/artifacts/ and makes the run fail.
set -u

[ $# -ge 2 ] || { echo "usage: fuzz/run.sh BUILD_DIR SECONDS [TARGET...]" >&2; exit 2; }
build=$1
secs=$2
shift 2
src=$(cd "$(dirname "$0")" && pwd)
targets=${*:-"swim_datagram swim_stream net_frame crdt tenant pack admin"}
nicev=${FUZZ_NICE:-10}
runs=${FUZZ_RUNS:--1}
mkdir -p "$build/artifacts" "$build/logs"
fail=0
total=0
npass=0
nfail=0
for t in $targets; do
	bin="$build/fuzz/fuzz_$t"
	if [ ! -x "$bin" ]; then
		echo "fuzz: $t: $bin not built" >&2
		fail=1
		nfail=$((nfail + 1))
		continue
	fi
	log="$build/logs/$t.log"
	# The reproducers first: each file runs once and must pass.
	if [ -d "$src/regress/$t" ] && [ -n "$(ls -A "$src/regress/$t" 2>/dev/null)" ]; then
		if ! "$bin" "$src"/regress/"$t"/* >"$build/logs/$t.regress.log" 2>&1; then
			echo "fuzz: $t: a reproducer in fuzz/regress/$t fails; see $build/logs/$t.regress.log" >&2
			fail=1
			nfail=$((nfail + 1))
			continue
		fi
	fi
	work="$build/corpus/$t"
	mkdir -p "$work"
	dict=""
	[ -f "$src/$t.dict" ] && dict="-dict=$src/$t.dict"
	# One process (no -jobs/-fork: the machine is shared). -timeout: an
	# input taking 10 s is a hang; -rss_limit_mb bounds a blow-up well
	# below the machine. Inputs grow up to libFuzzer's default max_len
	# (4 KiB, or the largest seed).
	# shellcheck disable=SC2086
	nice -n "$nicev" "$bin" -max_total_time="$secs" -runs="$runs" \
		-print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
		$dict \
		-artifact_prefix="$build/artifacts/$t-" \
		"$work" "$src/corpus/$t" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	cov=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$log" | tail -1 |
		sed -n 's/.*cov: \([0-9]*\) ft: \([0-9]*\).*/cov \1 ft \2/p')
	if [ $rc -ne 0 ]; then
		echo "fuzz: $t: FAILED (exit $rc) after ${execs:-?} execs; see $log and $build/artifacts/" >&2
		grep -E 'ERROR|SUMMARY|fuzz:' "$log" | head -5 >&2
		fail=1
		nfail=$((nfail + 1))
	else
		npass=$((npass + 1))
		printf 'fuzz: %-14s %12s execs %7s execs/s %3ss  %s\n' "$t" \
			"${execs:-?}" "${rate:-?}" "$secs" "$cov"
		total=$((total + ${execs:-0}))
	fi
done
echo "fuzz: $total execs in total"
# The closing line CI reads: one "test" per target.
echo "fuzz: $npass passed, $nfail failed"
exit $fail
