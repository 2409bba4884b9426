-- latchkey's audit trail (security events, see crates/latchkey-auth/src/audit.rs): one row per
-- event, written in the transaction of the change it records. Not a Better-Auth table;
-- Better-Auth ignores it, and a switch back leaves it behind untouched.
create table if not exists "latchkey_audit" (
    "id" text not null primary key,
    "at" timestamptz not null,
    "event" text not null,
    "userId" text,
    "sessionId" text,
    "ip" text,
    "userAgent" text,
    "detail" jsonb not null default '{}'
);
create index if not exists "latchkey_audit_at_idx" on "latchkey_audit" ("at");
create index if not exists "latchkey_audit_userId_idx" on "latchkey_audit" ("userId");
