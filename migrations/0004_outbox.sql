-- latchkey's mail outbox (crates/latchkey-auth/src/outbox.rs): a message is written in the
-- transaction of the change that causes it and sent afterwards by a worker on any replica.
-- Not a Better-Auth table; Better-Auth ignores it.
create table if not exists "latchkey_outbox" (
    "id" text not null primary key,
    "kind" text not null,
    "recipient" text not null,
    "subject" text not null,
    "textBody" text not null,
    "htmlBody" text not null,
    "createdAt" timestamptz not null,
    -- The next attempt is due then (a claim pushes it out by a lease while the send runs).
    "dueAt" timestamptz not null,
    "attempts" integer not null default 0,
    -- The transport's last error (never a body, a link or a credential).
    "lastError" text,
    "sentAt" timestamptz,
    "failedAt" timestamptz
);
create index if not exists "latchkey_outbox_due_idx" on "latchkey_outbox" ("dueAt")
    where "sentAt" is null and "failedAt" is null;
