// The Explore page's shell: its controls and empty tables; assets/explore.js fills them.
import { type Frame, Layout } from "../layout.tsx";

export function ExplorePage(props: { frame: Frame }) {
  return (
    <Layout frame={props.frame} page="explore" title="Explore">
      <h1>Explore</h1>
    </Layout>
  );
}
