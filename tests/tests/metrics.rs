//! `/metrics` of both daemons, scraped on their own listener and parsed as Prometheus would:
//! requests by route and status, sign-in outcomes, JWT rejections by reason, the key set, the
//! pool; and not served on the public listener.

use latchkey_e2e::prom::{scrape, value};
use latchkey_e2e::stack::{Api, Auth, PASSWORD};
use latchkey_e2e::{free_port, random_email};

#[test]
fn both_daemons_expose_their_metrics() {
    let auth_metrics = free_port();
    let api_metrics = free_port();
    let auth = Auth::start_with(|s| {
        s.env(
            "LATCHKEY_METRICS_LISTEN",
            format!("127.0.0.1:{auth_metrics}"),
        )
    });
    let api = Api::start_with(&auth.url(), |s| {
        s.env(
            "LATCHKEY_METRICS_LISTEN",
            format!("127.0.0.1:{api_metrics}"),
        )
    });
    api.wait_ready();
    let s = auth.new_user();
    auth.sign_in_resp(&s.email(), "not the password")
        .expect(401);
    auth.sign_in_resp(&random_email(), PASSWORD).expect(401);
    auth.sign_in(&s.email(), PASSWORD);
    let jwt = auth.jwt(&s);
    api.me(&jwt).expect(200);
    let mut forged = jwt.clone();
    forged.push('x');
    api.me(&forged).expect(401);
    api.me("not-a-jwt").expect(401);

    let a = scrape(auth_metrics);
    assert_eq!(
        value(
            &a,
            "latchkey_http_requests_total",
            &[("route", "/sign-up/email"), ("status", "200")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &a,
            "latchkey_http_requests_total",
            &[("route", "/sign-in/email"), ("status", "401")]
        ),
        2.0
    );
    assert_eq!(
        value(&a, "latchkey_sign_ins_total", &[("outcome", "success")]),
        1.0
    );
    assert_eq!(
        value(
            &a,
            "latchkey_sign_ins_total",
            &[("outcome", "invalid_credentials")]
        ),
        2.0
    );
    assert!(
        value(
            &a,
            "latchkey_http_request_duration_seconds_count",
            &[("route", "/sign-in/email")]
        ) >= 3.0
    );
    assert!(value(&a, "latchkey_db_pool_connections", &[("state", "max")]) >= 1.0);
    assert!(value(&a, "latchkey_hash_wait_seconds_count", &[]) >= 4.0);

    let p = scrape(api_metrics);
    assert_eq!(
        value(
            &p,
            "latchkey_http_requests_total",
            &[("route", "/api/me"), ("status", "200")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &p,
            "latchkey_http_requests_total",
            &[("route", "/api/me"), ("status", "401")]
        ),
        2.0
    );
    assert_eq!(value(&p, "latchkey_jwt_rejections_total", &[]), 2.0);
    assert!(value(&p, "latchkey_jwks_keys", &[]) >= 1.0);
    assert!(value(&p, "latchkey_jwks_fetches_total", &[("result", "ok")]) >= 1.0);
    assert!(value(&p, "latchkey_jwks_age_seconds", &[]) >= 0.0);

    // Not on the public listeners.
    auth.client().get("/metrics").send().expect(404);
    assert_ne!(api.client().get("/metrics").send().status, 200);
}

#[test]
fn outbox_deliveries_are_counted_by_kind_and_outcome() {
    let metrics = free_port();
    let mut smtp = latchkey_e2e::smtp::SmtpServer::start();
    let auth = Auth::start_with(|s| {
        latchkey_e2e::smtp::with_mail(&smtp)(s)
            .env("LATCHKEY_METRICS_LISTEN", format!("127.0.0.1:{metrics}"))
    });
    let alice = auth.new_user();
    smtp.down();
    auth.client()
        .post("/api/auth/request-password-reset")
        .json(&serde_json::json!({"email": alice.email()}))
        .send()
        .expect(200);
    let retry = [("kind", "reset-password"), ("outcome", "retry")];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while value(&scrape(metrics), "latchkey_mail_deliveries_total", &retry) < 1.0 {
        assert!(std::time::Instant::now() < deadline, "no retry counted");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // The message waits for its retry: the worker, idle, counts it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while value(&scrape(metrics), "latchkey_mail_outbox_pending", &[]) != 1.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the waiting message not counted"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    smtp.up();
    smtp.wait_for(&alice.email(), std::time::Duration::from_secs(40));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let sent = [("kind", "reset-password"), ("outcome", "sent")];
    while value(&scrape(metrics), "latchkey_mail_deliveries_total", &sent) < 1.0 {
        assert!(std::time::Instant::now() < deadline, "the send not counted");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while value(&scrape(metrics), "latchkey_mail_outbox_pending", &[]) != 0.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the sent message still counted"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let samples = scrape(metrics);
    assert_eq!(
        value(&samples, "latchkey_mail_deliveries_total", &sent),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            "latchkey_mail_deliveries_total",
            &[("outcome", "failed")]
        ),
        0.0
    );
}
