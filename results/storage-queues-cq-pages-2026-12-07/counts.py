import glob,os,sys,statistics as st
rows={}
for f in sorted(glob.glob(sys.argv[1]+'/*.log')):
    rnd,who,_=os.path.basename(f).split('-')
    for l in open(f):
        if l.startswith('DERIVED_WRITES'):
            p=l.split(); kv=dict(x.split('=') for x in p[2:])
            rows.setdefault((p[1],who),[]).append(kv)
print('| bench | code | samples | CQ writes per sample, median (min–max) | CQ bytes per write | index writes per sample, median |')
print('| --- | --- | ---: | ---: | ---: | ---: |')
for (name,who),v in sorted(rows.items(), key=lambda kv:(int(kv[0][0].split('_')[0]), kv[0][0], kv[0][1]!='before')):
    cw=[int(k['cq_writes']) for k in v]; cb=[int(k['cq_bytes']) for k in v]; iw=[int(k['index_writes']) for k in v]
    print(f"| {name} | {who} | {len(v)} | {st.median(cw):.0f} ({min(cw)}–{max(cw)}) | {sum(cb)/max(1,sum(cw)):,.0f} | {st.median(iw):.0f} |")
