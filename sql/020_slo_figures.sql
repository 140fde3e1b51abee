-- Each SLO's figures as the alerts job last computed them, so that every instance's /metrics
-- reports the same values (read at scrape time) rather than each the figures of its own last
-- run, which go stale on instances that lose the job's lock.
alter table slos
  add column sli double precision,
  add column error_budget_remaining double precision,
  add column burn_rates jsonb,
  add column evaluated_at timestamptz;
