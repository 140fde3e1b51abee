-- Live-feed resumption (Last-Event-ID) looks events up by id inside the retention window. Ids
-- grow with time, so a BRIN index answers "id > N" from a few block ranges for the cost of a
-- few hundred kilobytes, where a btree would tax every insert.
create index log_events_id_brin on log_events using brin (id) with (pages_per_range = 16);
