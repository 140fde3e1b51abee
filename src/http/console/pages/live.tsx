// The Live tail page's shell: its controls and empty tables; assets/live.js fills them.
import { type Frame, Layout } from "../layout.tsx";

export function LivePage(props: { frame: Frame }) {
  return (
    <Layout frame={props.frame} page="live" title="Live tail">
      <h1>Live tail</h1>
    </Layout>
  );
}
