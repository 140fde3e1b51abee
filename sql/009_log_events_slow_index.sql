-- Slow-request searches (min_latency_ms without a service): "latency >= X, newest first" walks
-- log_events_time_idx until it has a page, which for a threshold above nearly every event is
-- the whole retention window (10.6 s at 10M events for 100 s). Partial, so only events of 1 s
-- or more pay an index entry at insert. GET /logs plans with the actual values
-- (force_custom_plan), so any min_latency_ms >= 1000 is seen to imply the predicate.
create index log_events_slow_time_idx on log_events ("timestamp" desc, id desc)
  where latency_ms >= 1000;
