// An empty table the page's script fills: its caption for screen readers, its column heads (the
// `numeric` ones right-aligned), in a wrapper that scrolls sideways on a narrow screen.

export function Table(
  props: { id: string; caption: string; columns: string[]; numeric?: number[] },
) {
  return (
    // Focusable, so that a keyboard can scroll a table wider than the screen.
    <div class="table-wrap" tabindex={0} role="region" aria-label={props.caption}>
      <table id={props.id}>
        <caption class="visually-hidden">{props.caption}</caption>
        <thead>
          <tr>
            {props.columns.map((c, i) => (
              <th scope="col" class={props.numeric?.includes(i) ? "num" : undefined}>{c}</th>
            ))}
          </tr>
        </thead>
        <tbody></tbody>
      </table>
    </div>
  );
}
