//! Rate limiting of the endpoints that guess passwords, create accounts or send mail, with the
//! counters in Postgres (Better-Auth's `rateLimit` table) so that every replica enforces one
//! limit.
//!
//! Better-Auth's algorithm (docs/compatibility.md#rate-limits): a fixed window anchored at the
//! last *allowed* request. One upsert per limited request decides atomically. Which rule an
//! endpoint counts against is a column of the route table; endpoints without one are not
//! limited, so get-session and JWKS stay free of the extra query.

use std::net::IpAddr;
use std::time::Duration;

use chrono::Utc;
use latchkey_core::sql::{int4, int8, text, Db, Sql};

use crate::error::AuthError;

#[derive(Debug, Clone)]
pub(crate) struct RateLimitPolicy {
    pub(crate) enabled: bool,
    /// Sign-in, sign-up, change-password, verify-password, change-email.
    pub(crate) credential: Limit,
    /// Endpoints that send mail (request-password-reset, send-verification-email).
    pub(crate) mail: Limit,
    /// Peers whose `X-Forwarded-For` is believed (a reverse proxy in front of us).
    pub(crate) trusted_proxies: Vec<Cidr>,
}

/// Requests allowed per window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limit {
    pub(crate) max: u32,
    pub(crate) window: Duration,
}

/// The rules a route can name (Better-Auth's special rules; its default rule of 100 per 10 s
/// is not applied, see docs/compatibility.md#rate-limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    Credential,
    Mail,
}

/// An IP network, e.g. `10.0.0.0/8` or a single address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?} has an invalid prefix length"))?,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl Cidr {
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses (dual-stack sockets) compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

impl RateLimitPolicy {
    /// The client address a limit is keyed on: the socket peer, or, when the peer is a trusted
    /// proxy, the right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
    pub(crate) fn client_ip(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        let peer = canonical(peer);
        let trusted = |ip: IpAddr| self.trusted_proxies.iter().any(|c| c.contains(ip));
        if !trusted(peer) {
            return peer;
        }
        let Some(chain) = forwarded_for else {
            return peer;
        };
        let mut client = peer;
        for hop in chain.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = canonical(ip);
                    if !trusted(client) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        client
    }

    /// The bucket a client address counts against: IPv4 addresses alone, IPv6 addresses by
    /// their /64, since one subscriber usually holds a whole /64.
    pub(crate) fn bucket(ip: IpAddr) -> String {
        match canonical(ip) {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let net = u128::from(v6) & (u128::MAX << 64);
                format!("{}/64", std::net::Ipv6Addr::from(net))
            }
        }
    }

    /// Counts one request for `key` under `rule`; `Err` with a 429 when over the limit.
    pub(crate) async fn check(&self, db: &Db, rule: Rule, key: &str) -> Result<(), AuthError> {
        if !self.enabled {
            return Ok(());
        }
        let limit = match rule {
            Rule::Credential => self.credential,
            Rule::Mail => self.mail,
        };
        let now = Utc::now().timestamp_millis();
        let window_ms = limit.window.as_millis() as i64;
        let max = limit.max as i32;
        let conn = db.conn().await?;
        let row = conn
            .row(
                r#"insert into "rateLimit" as rl ("id", "key", "count", "lastRequest")
                   values ($1, $2, 1, $3)
                   on conflict ("key") do update set
                     "count" = case when $3 - rl."lastRequest" >= $4 then 1 else rl."count" + 1 end,
                     "lastRequest" = case when $3 - rl."lastRequest" >= $4 or rl."count" < $5
                                          then $3 else rl."lastRequest" end
                   returning "count", "lastRequest""#,
                &[
                    text(&crate::ids::new_id()),
                    text(&key),
                    int8(&now),
                    int8(&window_ms),
                    int4(&max),
                ],
            )
            .await?;
        let count: i32 = row.get(0);
        let last: i64 = row.get(1);
        if count <= max {
            return Ok(());
        }
        let retry_ms = (last + window_ms - now).max(0);
        Err(AuthError::RateLimited {
            retry_after_secs: ((retry_ms + 999) / 1000).max(1) as u64,
        })
    }

    /// Forgets counters idle for a day; called from a background task.
    pub(crate) async fn purge(&self, db: &Db) -> Result<u64, AuthError> {
        let cutoff = Utc::now().timestamp_millis() - 86_400_000;
        let conn = db.conn().await?;
        Ok(conn
            .exec(
                r#"delete from "rateLimit" where "lastRequest" < $1"#,
                &[int8(&cutoff)],
            )
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(proxies: &[&str]) -> RateLimitPolicy {
        let limit = |max, secs| Limit {
            max,
            window: Duration::from_secs(secs),
        };
        RateLimitPolicy {
            enabled: true,
            credential: limit(3, 10),
            mail: limit(3, 60),
            trusted_proxies: proxies.iter().map(|p| p.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn cidrs() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.0.0.1".parse().unwrap()));
        let one: Cidr = "::1".parse().unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let p = policy(&["127.0.0.1", "10.0.0.0/8"]);
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        // A stranger cannot choose its own key by sending the header.
        assert_eq!(p.client_ip(stranger, Some("1.2.3.4")), stranger);
        // Behind our proxy chain, the right-most untrusted hop is the client.
        assert_eq!(
            p.client_ip(peer, Some("6.6.6.6, 198.51.100.7, 10.1.1.1")),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(p.client_ip(peer, None), peer);
        assert_eq!(p.client_ip(peer, Some("garbage")), peer);
    }

    #[test]
    fn buckets() {
        let b = |s: &str| RateLimitPolicy::bucket(s.parse().unwrap());
        assert_eq!(b("192.0.2.1"), "192.0.2.1");
        assert_eq!(b("2001:db8:1:2:3:4:5:6"), b("2001:db8:1:2:ffff::1"));
        assert_eq!(b("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_ne!(b("2001:db8:1:2::1"), b("2001:db8:1:3::1"));
        assert_eq!(b("::ffff:192.0.2.1"), "192.0.2.1");
    }
}
