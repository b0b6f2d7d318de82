//! Who is asking: `Authorization: Bearer <token>` against the operator's
//! token and the tenants' tokens, compared in constant time.
//!
//! Each token is kept as its SHA-256 digest, and a presented token is
//! hashed and compared with every known digest (`subtle`), so neither the
//! comparison nor the number of tokens checked depends on where the first
//! difference is.

use hyper::header::{AUTHORIZATION, HeaderMap};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::config::Config;

/// The `WWW-Authenticate` challenge of a request without a token.
pub const CHALLENGE: &str = "Bearer realm=\"sluice-admin\"";
/// The challenge of a request with a token that is not known (RFC 6750).
pub const CHALLENGE_INVALID: &str = "Bearer realm=\"sluice-admin\", error=\"invalid_token\"";

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The operator's token: sees and does everything.
    Operator,
    /// A tenant's token: sees and acts on that tenant only.
    Tenant(String),
}

impl Caller {
    /// Whether the caller may see and act on what belongs to `tenant`.
    pub fn may_access(&self, tenant: &str) -> bool {
        match self {
            Caller::Operator => true,
            Caller::Tenant(own) => own == tenant,
        }
    }
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Caller::Operator => f.write_str("operator"),
            Caller::Tenant(tenant) => write!(f, "tenant {tenant}"),
        }
    }
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A token that is not known.
    Invalid,
}

/// The known tokens, as digests.
pub struct Tokens {
    /// (digest, whose); the operator's first.
    known: Vec<([u8; 32], Caller)>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("count", &self.known.len())
            .finish_non_exhaustive()
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl Tokens {
    /// The operator's token from `[admin]` and each tenant's `admin_token`.
    pub fn from_config(config: &Config) -> Self {
        let operator = config
            .admin
            .as_ref()
            .map(|admin| (admin.token.expose(), Caller::Operator));
        let tenants = config.tenants.iter().filter_map(|tenant| {
            let token = tenant.admin_token.as_ref()?;
            Some((token.expose(), Caller::Tenant(tenant.name.clone())))
        });
        Self::new(operator.into_iter().chain(tenants))
    }

    /// Tokens and whose they are.
    pub fn new<'a>(tokens: impl IntoIterator<Item = (&'a str, Caller)>) -> Self {
        Self {
            known: tokens
                .into_iter()
                .map(|(token, caller)| (digest(token.as_bytes()), caller))
                .collect(),
        }
    }

    /// Who sent these request headers.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, Refusal> {
        let value = headers.get(AUTHORIZATION).ok_or(Refusal::Missing)?;
        let text = value.to_str().map_err(|_| Refusal::Invalid)?;
        let (scheme, token) = text.split_once(' ').ok_or(Refusal::Missing)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Refusal::Missing);
        }
        let token = token.trim();
        if token.is_empty() {
            return Err(Refusal::Missing);
        }
        let presented = digest(token.as_bytes());
        // Every digest is compared; the index of the match is selected
        // without branching on secret data.
        let mut found = subtle::Choice::from(0);
        let mut index = 0u64;
        for (i, (known, _)) in self.known.iter().enumerate() {
            let equal = known.ct_eq(&presented);
            index = u64::conditional_select(&index, &(i as u64), equal);
            found |= equal;
        }
        if bool::from(found) {
            Ok(self.known[index as usize].1.clone())
        } else {
            Err(Refusal::Invalid)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn tokens_identify_their_caller() {
        let tokens = Tokens::new([
            ("operator-token-0123456789", Caller::Operator),
            ("acme-token-0123456789", Caller::Tenant("acme".into())),
            ("globex-token-0123456789", Caller::Tenant("globex".into())),
        ]);
        assert_eq!(
            tokens.authenticate(&headers("Bearer operator-token-0123456789")),
            Ok(Caller::Operator)
        );
        assert_eq!(
            tokens.authenticate(&headers("bearer globex-token-0123456789")),
            Ok(Caller::Tenant("globex".into()))
        );
        assert_eq!(
            tokens.authenticate(&headers("Bearer acme-token-0123456789")),
            Ok(Caller::Tenant("acme".into()))
        );
        assert_eq!(
            tokens.authenticate(&headers("Bearer acme-token-012345678")),
            Err(Refusal::Invalid)
        );
        assert_eq!(
            tokens.authenticate(&headers("Basic YTpi")),
            Err(Refusal::Missing)
        );
        assert_eq!(
            tokens.authenticate(&headers("Bearer ")),
            Err(Refusal::Missing)
        );
        assert_eq!(
            tokens.authenticate(&HeaderMap::new()),
            Err(Refusal::Missing)
        );
    }

    #[test]
    fn a_tenant_sees_only_its_own() {
        let acme = Caller::Tenant("acme".into());
        assert!(acme.may_access("acme"));
        assert!(!acme.may_access("globex"));
        assert!(Caller::Operator.may_access("globex"));
    }
}
