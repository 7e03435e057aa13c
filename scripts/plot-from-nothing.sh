#!/usr/bin/env bash
# Plots BenchmarkSwarmUpFromNothing's curve from its output (a file, or stdin) as a PNG: the wall
# time and the creates' floor against the nodes, with and without the routing mesh. Usage:
#   go test -tags e2e -run '^$' -bench SwarmUpFromNothing -benchtime 1x ./test/e2e/ | tee out.txt
#   scripts/plot-from-nothing.sh out.txt docs/img/from-nothing.png
# Needs gnuplot (installed from Debian's packages when missing, as root).
set -euo pipefail
in=${1:--} out=${2:-docs/img/from-nothing.png}
if ! command -v gnuplot >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "plot-from-nothing: gnuplot is missing: apt-get install gnuplot-nox" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q gnuplot-nox >/dev/null
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# "BenchmarkSwarmUpFromNothing/nodes=25/no-routing-mesh-2  1  70.1e9 ns/op  ... 1.31 floor-ratio ..."
awk -v dir="$dir" '
  $1 ~ /^BenchmarkSwarmUpFromNothing\/nodes=/ {
    split($1, p, "/"); sub(/^nodes=/, "", p[2]); sub(/-[0-9]+$/, "", p[2]); n = p[2] + 0
    mesh = ($1 ~ /no-routing-mesh/) ? "nomesh" : "mesh"
    wall = $3 / 1e9; ratio = ""
    for (i = 4; i < NF; i++) if ($(i+1) == "floor-ratio") ratio = $i
    if (ratio == "") next
    printf "%d %.2f\n", n, wall >> (dir "/" mesh ".dat")
    printf "%d %.2f\n", n, wall / ratio >> (dir "/floor.dat")
  }' "$in"
[ -s "$dir/mesh.dat" ] || [ -s "$dir/nomesh.dat" ] || { echo "plot-from-nothing: no BenchmarkSwarmUpFromNothing lines with floor-ratio in $in" >&2; exit 1; }
for f in mesh nomesh; do touch "$dir/$f.dat"; sort -n -o "$dir/$f.dat" "$dir/$f.dat"; done
sort -n -u -k1,1 -o "$dir/floor.dat" "$dir/floor.dat"
gnuplot <<GP
set terminal png size 900,560
set output "$out"
set title "machine swarm up from nothing (container hosts, 2 vCPUs)"
set xlabel "nodes"
set ylabel "seconds"
set key left top
set grid
plot "$dir/mesh.dat" using 1:2 with linespoints title "up, routing mesh", \
     "$dir/nomesh.dat" using 1:2 with linespoints title "up, no routing mesh", \
     "$dir/floor.dat" using 1:2 with lines title "creates' floor (hosts x CPU-s per host / cores)", \
     "$dir/floor.dat" using 1:(\$2*1.2) with lines title "1.2 x the floor (issue 31's bound)"
GP
echo "plot-from-nothing: wrote $out"
