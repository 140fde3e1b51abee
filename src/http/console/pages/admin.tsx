// The Administration page's shell: its controls and empty tables; assets/admin.js fills them.
// Everything here needs the admin right: the sections start hidden and session.js shows them
// to admins only (and explains the refusal to anyone else).
import { type Frame, Layout } from "../layout.tsx";
import { Table } from "./table.tsx";

const ROLES = ["reader", "writer", "admin"] as const;

const option = (value: string) => <option value={value}>{value}</option>;

const AUDIT_ACTIONS = [
  "key.create",
  "key.revoke",
  "user.update",
  "service.create",
  "service.update",
  "job.toggle",
  "job.run",
  "job.prune",
  "auth.denied",
  "auth.signin",
  "auth.signout",
];

export function AdminPage(props: { frame: Frame }) {
  return (
    <Layout frame={props.frame} page="admin" title="Administration" needs="admin">
      <h1>Administration</h1>
      <div id="admin-sections" data-needs="admin" hidden>
        <section id="keys" aria-labelledby="keys-title">
          <h2 id="keys-title">API keys</h2>
          <form id="key-create" class="toolbar">
            <label for="key-name">
              Name
              <input id="key-name" name="name" required maxlength={100} autocomplete="off" />
            </label>
            <label for="key-role">
              Role
              <select id="key-role" name="role">
                {ROLES.map(option)}
              </select>
            </label>
            <label for="key-teams">
              Teams (comma-separated, optional)
              <input id="key-teams" name="teams" autocomplete="off" />
            </label>
            <label for="key-rate">
              Rate limit per second (optional)
              <input
                id="key-rate"
                name="rate_limit_per_s"
                type="number"
                min="0.001"
                max="1000000"
                step="any"
              />
            </label>
            <button type="submit" class="primary" id="key-create-submit">Create key</button>
          </form>
          <div id="new-key" class="new-key" hidden>
            <label for="new-token">
              <span id="new-token-title">New key's token</span>
              <input id="new-token" readonly autocomplete="off" spellcheck={false} />
            </label>
            <button type="button" id="copy-token">Copy</button>
            <button type="button" id="dismiss-token" class="link">I have saved it</button>
            <p class="muted" id="new-token-note" role="status">
              This is the only time the token is shown: copy it now.
            </p>
          </div>
          <Table
            id="keys-table"
            caption="API keys"
            columns={[
              "Name",
              "Prefix",
              "Role",
              "Teams",
              "Rate limit /s",
              "Created",
              "Last used",
              "Expires",
              "Actions",
            ]}
            numeric={[4]}
          />
        </section>

        <section id="users" aria-labelledby="users-title">
          <h2 id="users-title">Users</h2>
          <p class="muted">
            People who signed in, or were given a role in advance. A change applies at their next
            request.
          </p>
          <Table
            id="users-table"
            caption="Users"
            columns={["Login", "Email", "Provider", "Role", "Teams", "Last seen", "Actions"]}
          />
        </section>

        <section id="audit" aria-labelledby="audit-title">
          <h2 id="audit-title">Audit log</h2>
          <form id="audit-filters" class="toolbar">
            <label for="audit-action">
              Action
              <input id="audit-action" name="action" list="audit-actions" autocomplete="off" />
            </label>
            <datalist id="audit-actions">
              {AUDIT_ACTIONS.map(option)}
            </datalist>
            <label for="audit-actor">
              Actor
              <input id="audit-actor" name="actor" placeholder="key#12" autocomplete="off" />
            </label>
            <label for="audit-from">
              From
              <input id="audit-from" name="start_time" type="datetime-local" step="1" />
            </label>
            <label for="audit-to">
              To
              <input id="audit-to" name="end_time" type="datetime-local" step="1" />
            </label>
            <button type="submit" class="primary">Filter</button>
            <button type="reset">Clear</button>
          </form>
          <Table
            id="audit-table"
            caption="Audit log, newest first"
            columns={["Time", "Actor", "Action", "Target", "Details"]}
          />
          <div class="toolbar pager">
            <button type="button" id="audit-newer" disabled>Newer</button>
            <button type="button" id="audit-older" disabled>Older</button>
          </div>
        </section>
      </div>
    </Layout>
  );
}
