//! The pooler the suite's pooler runs go through (`LATCHKEY_E2E_POOLER`, tests/src/pooler.rs)
//! really is a transaction pooler with default settings: named prepared statements, what
//! tokio-postgres' `query`/`execute` use and latchkey no longer does, break there, while the
//! unnamed statements latchkey uses work. A positive control for those runs.

use latchkey_e2e::cluster;
use latchkey_e2e::pooler::Pooler;

#[test]
fn named_statements_break_behind_a_transaction_pooler_and_unnamed_ones_work() {
    let db = cluster().create_db();
    let pooler = Pooler::start("transaction", 2);
    let conninfo = format!(
        "host=127.0.0.1 port={} user=postgres dbname={} connect_timeout=5",
        pooler.port, db.name
    );
    let connect = || postgres::Client::connect(&conninfo, postgres::NoTls).expect("connect");
    let mut a = connect();
    let mut b = connect();

    // A prepares on the server connection PgBouncer lends it; B then holds that connection
    // in a transaction (PgBouncer reuses the most recent idle one), so A's next statement runs
    // on the other server connection, where its statement does not exist.
    let statement = a.prepare("select 1::int").expect("prepare");
    let mut tx = b.transaction().expect("begin");
    tx.batch_execute("select 1").expect("in transaction");
    let err = a
        .query(&statement, &[])
        .expect_err("a named statement must not survive a change of server connection");
    let message = err
        .as_db_error()
        .map(|e| e.message().to_string())
        .unwrap_or_default();
    assert!(message.contains("does not exist"), "{err}");

    // The unnamed statement is parsed, bound and run in one go, wherever it lands.
    let n: i32 = a
        .query_typed_one(
            "select $1::int + 1",
            &[(&41i32, postgres::types::Type::INT4)],
        )
        .expect("unnamed statement through the pooler")
        .get(0);
    assert_eq!(n, 42);
    tx.rollback().expect("rollback");
}
