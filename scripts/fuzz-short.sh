#!/usr/bin/env bash
# Runs every fuzz target of the module for a short time (FUZZTIME, default
# 5s each), for `make check`. Long runs: `make fuzz`.
#
# A failing input is written by Go to <package>/testdata/fuzz/<Target>/<hash>
# and from then on runs as a seed in every plain `go test` of that package:
# the crasher becomes a regression test by itself. This script lists the
# new files so they get committed with the fix, and exits 1.
#
# Environment: GO (default go), FUZZTIME (default 5s).
set -euo pipefail

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-5s}
cd "$(dirname "$0")/.."

# Discovery. `go test -list '^Fuzz' ./...` names the targets as the
# toolchain sees them, but over ./... it also runs every package's TestMain
# (several build the avouch binary: about 90 s on two cores). So first find
# the packages whose test files declare a `func Fuzz…`, then ask
# `go test -list '^Fuzz'` about those only.
# shellcheck disable=SC2016 # a Go template, not shell expansions
tmpl='{{$p := .ImportPath}}{{$d := .Dir}}{{range .TestGoFiles}}{{$p}}	{{$d}}/{{.}}
{{end}}{{range .XTestGoFiles}}{{$p}}	{{$d}}/{{.}}
{{end}}'
mapfile -t packages < <(
	"$GO" list -f "$tmpl" ./... | while IFS=$'\t' read -r pkg file; do
		if grep -q '^func Fuzz' "$file"; then echo "$pkg"; fi
	done | sort -u
)
if [ "${#packages[@]}" -eq 0 ]; then
	echo "fuzz-short: no fuzz targets found" >&2
	exit 1
fi

targets=() # "package target dir"
for pkg in "${packages[@]}"; do
	dir=$("$GO" list -f '{{.Dir}}' "$pkg")
	listed=$("$GO" test -list '^Fuzz' "$pkg") || {
		echo "$listed" >&2
		echo "fuzz-short: go test -list failed for $pkg" >&2
		exit 1
	}
	while read -r name; do
		targets+=("$pkg $name $dir")
	done < <(grep '^Fuzz' <<<"$listed" || true)
done
echo "fuzz-short: ${#targets[@]} targets, $FUZZTIME each"

corpus() { # the committed inputs of one target, sorted
	if [ -d "$1/testdata/fuzz/$2" ]; then find "$1/testdata/fuzz/$2" -type f | sort; fi
}

# Go's fuzz coordinator before 1.27 can fail a target that found nothing:
# when the -fuzztime deadline fires, a worker's shutdown can be reported as
# "context deadline exceeded" (golang/go#75804). Such a run writes no input
# and prints nothing else under the target's FAIL line. That exact shape,
# and only it, gets one rerun; a second one fails like any other failure.
toolchain_race() { # log name: the run failed only by the coordinator race
	grep -q 'Failing input written\|^panic:\|^fatal error:' "$1" && return 1
	grep -A1 -- "^--- FAIL: $2 (" "$1" | tail -n +2 |
		grep -qx '    context deadline exceeded' || return 1
	# nothing but that line between the FAIL line and the package's FAIL
	[ "$(sed -n "/^--- FAIL: $2 (/,/^FAIL\$/p" "$1" | wc -l)" -eq 3 ]
}

log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed=()
new_inputs=()
for entry in "${targets[@]}"; do
	read -r pkg name dir <<<"$entry"
	for attempt in 1 2; do
		echo "== $name ($pkg)"
		before=$(corpus "$dir" "$name")
		status=0
		"$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -timeout 10m "$pkg" 2>&1 | tee "$log" || status=$?
		written=()
		while read -r f; do
			[ -n "$f" ] && written+=("${f#"$PWD"/}")
		done < <(comm -13 <(echo "$before") <(corpus "$dir" "$name"))
		new_inputs+=("${written[@]}")
		if [ "$status" -eq 0 ]; then
			break
		fi
		if [ "$attempt" -eq 1 ] && [ "${#written[@]}" -eq 0 ] && toolchain_race "$log" "$name"; then
			echo "fuzz-short: $name failed only by the fuzz coordinator's deadline race (golang/go#75804), no input written: running it once more" >&2
			continue
		fi
		failed+=("$name ($pkg)")
		break
	done
done

if [ "${#new_inputs[@]}" -gt 0 ]; then
	echo
	echo "fuzz-short: new failing inputs (now regression tests; commit them with the fix):"
	printf '  %s\n' "${new_inputs[@]}"
fi
if [ "${#failed[@]}" -gt 0 ]; then
	echo
	echo "fuzz-short: FAILED: ${failed[*]}" >&2
	exit 1
fi
echo "fuzz-short: all ${#targets[@]} targets passed"
