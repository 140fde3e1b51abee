-- The series of a 7-day summary (6-hour steps) reads every hour row of the week for its counts:
-- 8,400 rows at 50 services, each ~4 to a page with its maps and latency buckets, which took
-- most of a summary's time at 10M events (30 ms of a plain heap scan on a busy machine, 5 ms as
-- an index-only scan of this index). service_id is included so that a service filter is
-- answered from the index too. The price: compaction's updates of hour rows change an indexed
-- column now, so they are no longer HOT (an index entry each, ~50 a compaction at 50 services).
create index log_rollup_1h_series_idx on log_rollup_1h_store (bucket)
  include (service_id, count, errors);
