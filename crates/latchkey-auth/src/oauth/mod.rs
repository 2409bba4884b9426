//! Social sign-in (docs/compatibility.md#social-sign-in): GitHub, Google and any OpenID
//! Connect provider, as Better-Auth 1.7 does it, with PKCE always, a nonce for OpenID
//! providers, and every ID token verified.

pub(crate) mod accounts;
pub(crate) mod config;
pub(crate) mod http;
pub(crate) mod provider;
pub(crate) mod state;

use std::sync::Arc;

pub(crate) use provider::Provider;

/// The configured providers, by id.
#[derive(Default)]
pub(crate) struct Providers {
    all: Vec<Arc<Provider>>,
}

impl Providers {
    pub(crate) fn new(configs: Vec<config::ProviderConfig>) -> Result<Self, String> {
        if configs.is_empty() {
            return Ok(Self::default());
        }
        let http = http::Outbound::new()?;
        let all = configs
            .into_iter()
            .map(|c| Provider::new(c, http.clone()).map(Arc::new))
            .collect::<Result<_, _>>()?;
        Ok(Self { all })
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Arc<Provider>> {
        self.all.iter().find(|p| p.id() == id)
    }

    pub(crate) fn ids(&self) -> Vec<&str> {
        self.all.iter().map(|p| p.id()).collect()
    }

    /// Starts discovery of every OpenID provider in the background; a provider that is down
    /// at start-up is retried until it answers.
    pub(crate) fn discover_in_background(&self) {
        for p in &self.all {
            tokio::spawn(p.clone().discover_until_ready());
        }
    }
}
