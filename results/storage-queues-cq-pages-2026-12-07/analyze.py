import json, glob, os, statistics as st
import sys
root=sys.argv[1] if len(sys.argv)>1 else '/work/cq-bench/crit'
data={}  # (who, bench) -> list of (round, appends/s)
for d in sorted(glob.glob(root+'/*')):
    rnd, who, _ = os.path.basename(d).split('-')
    for f in glob.glob(d+'/*/*/new/sample.json'):
        bench=f.split('/')[-3]
        s=json.load(open(f))
        for t,i in zip(s['times'],s['iters']):
            data.setdefault((who,bench),[]).append((int(rnd), 1e9*i/t))
def q(v,p):
    v=sorted(v); k=(len(v)-1)*p; lo=int(k); hi=min(lo+1,len(v)-1); return v[lo]+(v[hi]-v[lo])*(k-lo)
benches=['8_queues_sync_every_round','8_queues_checkpoint_5s','100_queues_sync_every_round','100_queues_checkpoint_5s','1000_queues_checkpoint_5s']
med={}
print('| bench | who | samples | median appends/s | IQR | per-round medians |')
print('| --- | --- | ---: | ---: | --- | --- |')
for b in benches:
    for who in ['before','after']:
        v=data.get((who,b),[])
        if not v: continue
        xs=[x for _,x in v]; med[(who,b)]=st.median(xs)
        rounds=sorted(set(r for r,_ in v))
        pr=', '.join(f'{st.median([x for r2,x in v if r2==r])/1e3:.0f}k' for r in rounds)
        print(f'| {b} | {who} | {len(xs)} | {st.median(xs)/1e3:.0f}k | {q(xs,.25)/1e3:.0f}k–{q(xs,.75)/1e3:.0f}k | {pr} |')
print()
for who in ['before','after']:
    try:
        m8=med[(who,'8_queues_checkpoint_5s')]; m100=med[(who,'100_queues_checkpoint_5s')]; m1000=med[(who,'1000_queues_checkpoint_5s')]
        print(f'{who}: checkpoint_5s 8 -> 100 -> 1000: {m8/1e3:.0f}k {m100/1e3:.0f}k {m1000/1e3:.0f}k ratios 1.00 {m100/m8:.2f} {m1000/m8:.2f}')
    except KeyError as e: print(who,'missing',e)
for b in benches:
    if ('before',b) in med and ('after',b) in med:
        print(f'{b}: after/before {med[("after",b)]/med[("before",b)]:.2f}')
