// The Service page's shell: its controls and empty tables; assets/service.js fills them.
import { type Frame, Layout } from "../layout.tsx";

export function ServicePage(props: { frame: Frame; name: string }) {
  return (
    <Layout frame={props.frame} page="service" title={props.name}>
      <h1>{props.name}</h1>
    </Layout>
  );
}
