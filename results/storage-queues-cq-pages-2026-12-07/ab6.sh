#!/bin/bash
# Sixth series: 1000 queues only (checkpoint_5s), same binaries as the fifth, four alternating rounds.
cd /work/wt-cq
run() {
  local out=/work/cq-bench/runs6/$2-$1-$3.log
  export CRITERION_HOME=/work/cq-bench/crit6/$2-$1-$3
  { echo "START $(date -u +%H:%M:%S) $(uptime)"; /work/cq-bins/storage-$1-warm --bench --noplot "$4"; echo "END $(date -u +%H:%M:%S) $(uptime)"; } > $out 2>&1
}
for round in 15 16 17 18; do
  if [ $((round % 2)) = 0 ]; then order="after before"; else order="before after"; fi
  for who in $order; do
    run $who $round q1000 '1000_queues/checkpoint_5s'
  done
done
echo ALLDONE > /work/cq-bench/runs6/done
