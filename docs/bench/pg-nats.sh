#!/usr/bin/env bash
# Herald on PostgreSQL and an external nats-server, loaded by herald bench
# (docs/BENCHMARKS.md, "Postgres and an external NATS, one process and
# scaled out"). One run:
#
#   docs/bench/pg-nats.sh one 1      # one herald serve with every role
#   docs/bench/pg-nats.sh split 1    # api ×2, worker ×2, tracker+scheduler
#
# Each run gets a fresh database (bench_<mode>_<n>), a fresh nats-server
# store and a fresh sink, and leaves its figures in $OUT/<mode>-<n>/:
# bench.json (herald bench's report), procs.txt (CPU seconds and peak RSS of
# every process during the measured bench), metrics-*.txt (each Herald's
# /metrics after the run) and, with PPROF=<process name>, a 10 s CPU
# profile of that process taken 10 s into the load.
#
# Environment: ANALYZE=0 (no ANALYZE after the warm-up), PGSAMPLE=1 (sample
# pg_stat_activity), PGEXPLAIN=3ms (auto_explain), PPROF=<name>, KEEP=1 (keep
# the database).
#
# Needs: PostgreSQL on 127.0.0.1:5432 (user postgres, trust), psql, jq, curl, bc, GNU time,
# HERALD (default ./herald) and NATS_SERVER (default nats-server).
set -euo pipefail

mode=${1:?one or split}
n=${2:?run number}
H=${HERALD:-./herald}
NATS=${NATS_SERVER:-nats-server}
OUT=${OUT:-/tmp/sb/out}
w=$OUT/$mode-$n
db=bench_${mode}_$n
rm -rf "$w" && mkdir -p "$w"

psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db"
# With PGEXPLAIN=<duration>, the plan of every statement slower than that goes
# to PostgreSQL's log (auto_explain).
if [[ -n ${PGEXPLAIN:-} ]]; then
	psql -h 127.0.0.1 -U postgres -qc "ALTER DATABASE $db SET session_preload_libraries = 'auto_explain'" \
		-c "ALTER DATABASE $db SET auto_explain.log_min_duration = '$PGEXPLAIN'"
fi
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	[[ -n ${KEEP:-} ]] || psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
	rm -rf "$w"/nats "$w"/data-*
}
trap cleanup EXIT

"$NATS" -js -a 127.0.0.1 -p 24222 -sd "$w/nats" >"$w/nats.log" 2>&1 &
pids+=($!); echo "nats-server $!" >"$w/pids"
"$H" bench sink --addr 127.0.0.1:19443 --smtp-addr 127.0.0.1:12525 --ca-out "$w/sink-ca.pem" >"$w/sink.log" 2>&1 &
pids+=($!); echo "sink $!" >>"$w/pids"

# Settings every Herald process shares. The secret key seals the providers'
# credentials: the workers must open what the API stored.
export HERALD_SECRET_KEY=$(head -c 32 /dev/urandom | base64)
export HERALD_ALLOW_PRIVATE_TARGETS=true # the sink is on loopback
common=(--database-url "postgres://postgres@127.0.0.1:5432/$db?sslmode=disable"
	--nats-url nats://127.0.0.1:24222 --nats-replicas 1 --api-rate 0 --log-level warn)

serve() { # name http-addr roles
	local extra=()
	[[ ${PPROF:-} == "$1" ]] && extra=(--pprof=true)
	"$H" serve "${common[@]}" --roles "$3" --http-addr "$2" --data-dir "$w/data-$1" "${extra[@]}" >"$w/$1.log" 2>&1 &
	pids+=($!); echo "$1 $!" >>"$w/pids"; echo "$2" >"$w/addr-$1"
}
ready() { # http-addr
	for _ in $(seq 120); do curl -sf "http://$1/readyz" >/dev/null && return; sleep 0.5; done
	echo "not ready: $1" >&2; return 1
}

if [[ $mode == one ]]; then
	serve all 127.0.0.1:18080 api,worker,tracker,scheduler
	ready 127.0.0.1:18080
	urls=http://127.0.0.1:18080
	herald=(all)
else
	serve tracker 127.0.0.1:18083 tracker,scheduler # first: it migrates the database
	ready 127.0.0.1:18083
	serve api1 127.0.0.1:18081 api
	serve api2 127.0.0.1:18082 api
	serve worker1 127.0.0.1:18091 worker
	serve worker2 127.0.0.1:18092 worker
	for a in 18081 18082 18091 18092; do ready 127.0.0.1:$a; done
	urls=http://127.0.0.1:18081,http://127.0.0.1:18082
	herald=(api1 api2 worker1 worker2 tracker)
fi
key=$("$H" apps create bench --json "${common[@]}" | jq -r .api_key)
pid_of() { awk -v n="$1" '$1 == n { print $2 }' "$w/pids"; }
sink=(--sink-url https://127.0.0.1:19443 --sink-ca "$w/sink-ca.pem" --sink-smtp 127.0.0.1:12525)

# Set the app up (providers on the sink, 1,000 users) and warm up, unmeasured.
"$H" bench --url "$urls" --api-key "$key" "${sink[@]}" --concurrency 8 --count 500 --wait 20s --json >"$w/warmup.json"
# The machine's PostgreSQL runs with autovacuum off, so nothing would ever
# ANALYZE the new tables: do what autovacuum's analyze would have done by now
# (ANALYZE=0 leaves the tables without statistics).
if [[ ${ANALYZE:-1} != 0 ]]; then
	psql -h 127.0.0.1 -U postgres -d "$db" -qc "ANALYZE"
fi

cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; } # clock ticks
pg_cpu() { local s=0; for p in $(pgrep -u postgres); do s=$((s + $(cpu "$p"))); done; echo "$s"; }
declare -A before
for name in "${herald[@]}" nats-server sink; do before[$name]=$(cpu "$(pid_of "$name")"); done
before[postgres]=$(pg_cpu)
read -r _ u0 n0 s0 i0 io0 q0 sq0 st0 _ </proc/stat
uptime >"$w/load-before"

# With PGSAMPLE=1, what the database's sessions are doing, five times a second.
sampler=
if [[ -n ${PGSAMPLE:-} ]]; then
	printf '%s\n' "SELECT now()::time, state, wait_event_type, wait_event, left(regexp_replace(query, '\s+', ' ', 'g'), 120) FROM pg_stat_activity WHERE datname = '$db' AND state <> 'idle' AND pid <> pg_backend_pid() \\watch 0.2" |
		psql -h 127.0.0.1 -U postgres -d "$db" -AtF '|' >"$w/pg-activity.txt" 2>&1 &
	sampler=$!
fi
prof=
if [[ -n ${PPROF:-} ]]; then
	(sleep 10; curl -s -o "$w/$PPROF.pprof" "http://$(cat "$w/addr-$PPROF")/debug/pprof/profile?seconds=10") &
	prof=$!
fi
/usr/bin/time -f '%U %S' -o "$w/bench.time" \
	"$H" bench --url "$urls" --api-key "$key" "${sink[@]}" --no-setup --pid "$(pid_of "${herald[0]}")" \
	--concurrency 64 --duration 30s --wait 30s --json >"$w/bench.json"

uptime >"$w/load-after"
read -r _ u1 n1 s1 i1 io1 q1 sq1 st1 _ </proc/stat
declare -A after
for name in "${herald[@]}" nats-server sink; do after[$name]=$(cpu "$(pid_of "$name")"); done
after[postgres]=$(pg_cpu)
{
	tick=$(getconf CLK_TCK)
	printf '%-12s %10s %10s\n' process cpu_s peak_rss_mib
	for name in "${herald[@]}" nats-server sink; do
		p=$(pid_of "$name")
		printf '%-12s %10.2f %10d\n' "$name" "$(echo "(${after[$name]} - ${before[$name]}) / $tick" | bc -l)" \
			"$(awk '/VmHWM/ { print int($2 / 1024) }' "/proc/$p/status")"
	done
	printf '%-12s %10.2f\n' postgres "$(echo "(${after[postgres]} - ${before[postgres]}) / $tick" | bc -l)"
	read -r bu bs <"$w/bench.time"
	printf '%-12s %10.2f\n' bench "$(echo "$bu + $bs" | bc -l)"
	busy=$(((u1 + n1 + s1 + q1 + sq1) - (u0 + n0 + s0 + q0 + sq0)))
	idle=$(((i1 + io1) - (i0 + io0)))
	steal=$((st1 - st0))
	printf 'machine: busy %.2f, idle %.2f, stolen by the host %.2f core-seconds\n' \
		"$(echo "$busy / $tick" | bc -l)" "$(echo "$idle / $tick" | bc -l)" "$(echo "$steal / $tick" | bc -l)"
} >"$w/procs.txt"
[[ -z $prof ]] || wait "$prof"
[[ -z $sampler ]] || kill "$sampler"
psql -h 127.0.0.1 -U postgres -d "$db" -c "SELECT relname, seq_scan, seq_tup_read, idx_scan, n_tup_ins, n_tup_upd, n_tup_del, n_live_tup, n_dead_tup FROM pg_stat_user_tables ORDER BY seq_tup_read DESC" >"$w/pg-tables.txt"
for name in "${herald[@]}"; do curl -s "http://$(cat "$w/addr-$name")/metrics" >"$w/metrics-$name.txt" || true; done
cat "$w/procs.txt"
jq -c '{delivered_per_second, requests_accepted_per_second, accept_latency_ms, deliveries: .deliveries | {expected, delivered, repeats, unmatched}, status_classes, process}' "$w/bench.json"
