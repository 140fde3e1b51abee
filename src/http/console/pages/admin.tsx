// The Administration page's shell: its controls and empty tables; assets/admin.js fills them.
import { type Frame, Layout } from "../layout.tsx";

export function AdminPage(props: { frame: Frame }) {
  return (
    <Layout frame={props.frame} page="admin" title="Administration">
      <h1>Administration</h1>
    </Layout>
  );
}
