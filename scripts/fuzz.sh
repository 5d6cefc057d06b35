#!/bin/sh
# Runs every Go fuzz target in the tree for the given time each (default 3s).
set -eu
t=${1:-3s}
grep -l '^func Fuzz' $(git ls-files '*_test.go'; git ls-files -o --exclude-standard '*_test.go') 2>/dev/null |
while read -r f; do
	dir=./$(dirname "$f")
	for target in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$f"); do
		echo "fuzz: $dir $target ($t)"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$t" "$dir" >/tmp/nemod-fuzz.$$ 2>&1 || {
			cat /tmp/nemod-fuzz.$$; rm -f /tmp/nemod-fuzz.$$; exit 1; }
	done
done
rm -f /tmp/nemod-fuzz.$$
