// The Jobs page's shell: its controls and empty tables; assets/jobs.js fills them.
import { type Frame, Layout } from "../layout.tsx";

export function JobsPage(props: { frame: Frame }) {
  return (
    <Layout frame={props.frame} page="jobs" title="Jobs">
      <h1>Jobs</h1>
    </Layout>
  );
}
