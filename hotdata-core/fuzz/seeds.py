"""Seed replies for the `responses` fuzz target: one file per flow (and one per operation), in
its input format (a flow byte, an operation byte, replies split by 0x1e). Usage: seeds.py DIR"""
import os
import sys
A=open(os.path.join(os.path.dirname(os.path.abspath(__file__)),'../../tests/fixtures/arrow/types_integers.arrows'),'rb').read()
out=sys.argv[1] if len(sys.argv)>1 else 'corpus/responses'; os.makedirs(out,exist_ok=True)
def r(status, body=b'', headers=()):
    h=''.join(f'{k}: {v}\n' for k,v in headers)
    if isinstance(body,str): body=body.encode()
    return f'{status}\n{h}\n'.encode()+body
ARROW=('content-type','application/vnd.apache.arrow.stream')
err=lambda c,code='BUSY': r(c, '{"error":{"code":"%s","message":"m"}}'%code)
inline=r(200,'{"columns":["n"],"nullable":[false],"execution_time_ms":1,"preview_row_count":2,"query_run_id":"qr","row_count":2,"rows":[[0],[1]],"truncated":false,"result_id":"r5","total_row_count":2}')
trunc=r(200,'{"columns":["n"],"nullable":[false],"execution_time_ms":1,"preview_row_count":2,"query_run_id":"qr","row_count":2,"rows":[[0],[1.5e300]],"truncated":true,"result_id":"r5","total_row_count":6}')
ready=r(200,'{"result_id":"r5","status":"ready"}')
proc=r(202,'{"result_id":"r5","status":"processing"}',[('retry-after','2')])
run202=r(202,'{"query_run_id":"qr","status":"running","status_url":"/v1/query-runs/qr"}',[('x-result-id','r5')])
arrow=r(200,A,[ARROW])
qrun=r(200,'{"id":"qr","status":"succeeded","created_at":"2026-01-01T00:00:00Z","snapshot_id":"s","sql_hash":"h","sql_text":"select 1","result_id":"r5"}')
qrunning=r(200,'{"id":"qr","status":"running","created_at":"2026-01-01T00:00:00Z","snapshot_id":"s","sql_hash":"h","sql_text":"select 1"}',[('retry-after','1')])
dbs=lambda more: r(200,'{"databases":[{"id":"db1","attachments":[],"default_catalog":"c","default_schema":"s","default_connection_id":"x"}],"has_more":%s,"next_cursor":"c2","count":1}'%('true' if more else 'false'))
create=r(201,'{"upload_id":"up_1","finalize_token":"tok","headers":{},"mode":"single","url":"http://storage.test/single"}')
createm=r(201,'{"upload_id":"up_1","finalize_token":"tok","headers":{},"mode":"multipart","part_size":64}')
mint=r(200,'{"parts":[{"part_number":1,"url":"http://storage.test/part/1"}]}')
mint2=r(200,'{"parts":[{"part_number":2,"url":"http://storage.test/part/2"}]}')
put=r(200,'',[('etag','"e1"')])
fin=r(200,'{"upload_id":"up_1","status":"finalized","size_bytes":100,"created_at":"2026-01-01T00:00:00Z"}')
seeds={
 'sql_inline':(1,[inline]),'sql_trunc':(1,[trunc,ready,arrow]),'sql_async':(1,[run202,proc,ready,arrow]),
 'sql_retry':(1,[r(429,'',[('retry-after','1')]),err(503),inline]),
 'qarrow':(2,[arrow]),'qarrow_async':(2,[run202,proc,ready,arrow]),
 'res_arrow':(3,[arrow]),'res_proc':(3,[proc,arrow]),'res_fail':(3,[r(409,'{"result_id":"r5","status":"failed","error_message":"boom"}')]),
 'pages':(4,[dbs(True),dbs(True),dbs(False)]),
 'csv':(5,[r(200,'a,b\n1,2\n',[('content-type','text/csv')])]),
 'qrun':(6,[qrunning,qrun]),
 'upload_single':(7,[create,put,fin]),'upload_multi':(7,[createm,mint,put,mint2,put,fin]),
 'upload_faults':(7,[createm,mint,r(503,'<Error/>'),put,mint2,put,err(500),fin]),
}
# flow 8: a saved ResumeState (the first segment), then the replies to resuming it
minted=b'{"version":1,"upload_id":"up_1","finalize_token":"tok","part_size":64,"headers":[],"urls":"minted","total":100,"end":2,"parts":[{"n":1,"etag":"\\"e1\\"","len":64}],"finalize":"not_sent"}'
single=b'{"version":1,"upload_id":"up_1","finalize_token":"tok","part_size":100,"headers":[["x-amz-acl","private"]],"urls":{"single":"http://storage.test/single"},"total":100,"end":1,"parts":[{"n":1,"etag":"e","len":100}],"finalize":"may_have_arrived"}'
seeds['resume_minted']=(8,[minted,mint2,put,fin])
seeds['resume_finalize']=(8,[single,err(409,'ALREADY_FINALIZED'),fin])
for name,(flow,rs) in seeds.items():
    open(f'{out}/{name}',"wb").write(bytes([flow,0])+b'\x1e'.join(rs))
# every operation's decoder with a generic answer
for i in range(63):
    open(f'{out}/op{i}',"wb").write(bytes([0,i])+b'\x1e'.join([inline,qrun,err(404,'NOT_FOUND'),r(204)]))
print(len(os.listdir(out)))
