#!/bin/bash
# Same-session A/B, fifth series: counters, samples of at least 1,000,000 appends, queues warmed with a page each (before = main + counters).
cd /work/wt-cq
run() {
  local out=/work/cq-bench/runs5/$2-$1-$3.log
  export CRITERION_HOME=/work/cq-bench/crit5/$2-$1-$3
  { echo "START $(date -u +%H:%M:%S) $(uptime)"; /work/cq-bins/storage-$1-warm --bench --noplot "$4"; echo "END $(date -u +%H:%M:%S) $(uptime)"; } > $out 2>&1
}
for round in 12 13 14; do
  if [ $round = 13 ]; then order="after before"; else order="before after"; fi
  for who in $order; do
    run $who $round q8_100 'append_queues/.*/(8|100)_queues/'
    run $who $round q1000 '1000_queues/checkpoint_5s'
  done
done
echo ALLDONE > /work/cq-bench/runs5/done
