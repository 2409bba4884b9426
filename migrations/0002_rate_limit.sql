-- Better-Auth's optional rate-limit table (docs/compatibility.md, Rate limits; `rateLimit.storage: "database"`),
-- so that every replica shares one set of counters. "lastRequest" is epoch milliseconds.
create table if not exists "rateLimit" ("id" text not null primary key, "key" text not null unique, "count" integer not null, "lastRequest" bigint not null);
