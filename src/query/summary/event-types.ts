// The event-type breakdown of a summary: at most ROLLUP_MAX_EVENT_TYPES types, the rest and
// the events without a type under their own keys, always adding up to the total.

/**
 * The key of event_type_breakdown under which the summary counts the typed events it does not
 * list by type: those beyond the `max` largest types of the window, and those the rollups
 * already folded (ROLLUP_MAX_EVENT_TYPES per row, sql/010). Parenthesised so that it reads as
 * no ordinary type; an event type of exactly this name would be added to it, which
 * event_types_folded tells apart.
 */
export const OTHER_EVENT_TYPES = "(other)";

/**
 * The key of event_type_breakdown under which the summary counts the events sent without an
 * event type, so that the breakdown adds up to total_logs. Parenthesised like
 * OTHER_EVENT_TYPES; an event type of exactly this name is added to it.
 */
export const NO_EVENT_TYPE = "(none)";

/**
 * event_type_breakdown from netted per-type counts and the events already summed as other: at
 * most `max` types, largest first, plus OTHER_EVENT_TYPES for the rest, so that the breakdown
 * always adds up to the window's typed events exactly. Exact per type when nothing was folded.
 * Once rows folded differently are netted (a day row less hours outside the window, each with
 * its own types kept), a type can net above its events or below zero: negative ones are not
 * listed, and an excess is taken back from the smallest listed so that nothing is negative.
 */
export function foldEventTypes(
  counts: ReadonlyMap<string, number>,
  other: number,
  max: number,
): { breakdown: Record<string, number>; folded: number } {
  let rest = other;
  for (const n of counts.values()) rest += n;
  const listed = [...counts].filter(([, n]) => n > 0)
    .sort(([ka, a], [kb, b]) => b - a || (ka < kb ? -1 : ka > kb ? 1 : 0))
    .slice(0, max);
  for (const [, n] of listed) rest -= n;
  for (let i = listed.length - 1; i >= 0 && rest < 0; i--) {
    const take = Math.min(listed[i][1], -rest);
    listed[i][1] -= take;
    rest += take;
  }
  const breakdown: Record<string, number> = {};
  for (const [k, n] of listed) if (n > 0) breakdown[k] = n;
  const folded = Math.max(0, rest);
  if (folded > 0) breakdown[OTHER_EVENT_TYPES] = (breakdown[OTHER_EVENT_TYPES] ?? 0) + folded;
  return { breakdown, folded };
}
