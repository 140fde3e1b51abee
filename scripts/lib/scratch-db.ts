// A database of its own on a shared PostgreSQL server, for one test file or one benchmark run:
// created empty under a random name, dropped (connections and all) when done.
import postgres from "postgres";

export interface ScratchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** A new, empty database on the server of `adminUrl`, named `prefix` + 16 hex digits. */
export async function createScratchDatabase(
  adminUrl: string,
  prefix: string,
): Promise<ScratchDatabase> {
  const name = `${prefix}${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  await onAdmin(adminUrl, (admin) => admin`create database ${admin(name)}`);
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return {
    name,
    url: u.toString(),
    drop: () =>
      onAdmin(adminUrl, (admin) => admin`drop database if exists ${admin(name)} with (force)`),
  };
}

async function onAdmin(adminUrl: string, fn: (admin: postgres.Sql) => Promise<unknown>) {
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await fn(admin);
  } finally {
    await admin.end();
  }
}
