// The Overview page's shell: its controls and empty tables; assets/overview.js fills them.
import { type Frame, Layout } from "../layout.tsx";

export function OverviewPage(props: { frame: Frame }) {
  return (
    <Layout frame={props.frame} page="overview" title="Overview">
      <h1>Overview</h1>
    </Layout>
  );
}
