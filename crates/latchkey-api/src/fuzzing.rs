//! Entry points for the fuzz targets in `fuzz/` (cargo feature `fuzzing`, off in every
//! normal build): the proxy's request-target check and the upstream URI it builds.

use http::{Method, Uri};

use crate::config::Upstream;

/// [`crate::proxy::check_target`]: `Err` carries the error code of the refusal.
pub fn check_target(method: &Method, target: &Uri) -> Result<(), &'static str> {
    crate::proxy::check_target(method, target).map_err(|e| e.code())
}

/// [`crate::proxy::path_is_safe`] on a path as sent.
pub fn path_is_safe(path: &str) -> bool {
    crate::proxy::path_is_safe(path)
}

/// [`crate::proxy::upstream_uri`]: where a checked target is forwarded.
pub fn upstream_uri(upstream: &Upstream, target: &Uri) -> Result<Uri, &'static str> {
    crate::proxy::upstream_uri(upstream, target).map_err(|e| e.code())
}
