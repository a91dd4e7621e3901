//! Who is calling: the token from `Authorization`, given as `Bearer`, as
//! the password of `Basic` (what Elasticsearch shippers send) or as
//! `Splunk <token>` (HEC), checked against the catalog's principals.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use strata_access::{Authenticated, Role};

use super::json_error;
use crate::server::Shared;

/// What a caller must be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    /// Send events.
    Ingest,
    /// Run SQL, over what the principal's role and tenants show.
    Query,
    /// Administer the server (metrics).
    Admin,
}

/// The schemes accepted, as a 401 names them.
const EXPECTED: &str = "expected `Authorization: Bearer <token>` (or `Basic` with the token as the password, or `Splunk <token>`); `strata users add` creates a principal and prints its token";

/// What a refused token is told.
pub const INVALID_TOKEN: &str = "the token is not valid (unknown or revoked)";

/// Why a request is refused before anything else is read.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No usable credentials (401).
    Unauthenticated(String),
    /// A token no active principal holds: unknown or revoked (401).
    InvalidToken,
    /// A principal without the right (403).
    Forbidden(String),
}

impl Refusal {
    /// What the caller is told.
    pub fn message(&self) -> String {
        match self {
            Refusal::Unauthenticated(why) => format!("{why}: {EXPECTED}"),
            Refusal::InvalidToken => format!("{INVALID_TOKEN}: {EXPECTED}"),
            Refusal::Forbidden(why) => why.clone(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let message = self.message();
        if let Refusal::Forbidden(_) = self {
            return json_error(StatusCode::FORBIDDEN, &message);
        }
        let mut response = json_error(StatusCode::UNAUTHORIZED, &message);
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"strata\", Basic realm=\"strata\""),
        );
        response
    }
}

/// The principal calling, if its token is valid and its role has `right`.
pub fn authorize(
    shared: &Shared,
    headers: &HeaderMap,
    right: Right,
) -> Result<Authenticated, Refusal> {
    let principal = authenticate(shared, headers)?;
    permit(&principal, right)?;
    Ok(principal)
}

/// The principal calling, if its token is valid.
pub fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<Authenticated, Refusal> {
    let token = token(headers)?;
    shared.authenticate(&token).ok_or(Refusal::InvalidToken)
}

/// Whether `principal`'s role has `right`.
pub fn permit(principal: &Authenticated, right: Right) -> Result<(), Refusal> {
    let allowed = match right {
        Right::Ingest => principal.role.may_ingest(),
        Right::Query => principal.role.may_query(),
        Right::Admin => principal.role == Role::Admin,
    };
    if allowed {
        Ok(())
    } else {
        let what = match right {
            Right::Ingest => "send events",
            Right::Query => "run SQL (admin, auditor, analyst and client may)",
            Right::Admin => "use this endpoint (admin only)",
        };
        Err(Refusal::Forbidden(format!(
            "principal `{}` has role `{}`, which may not {what}",
            principal.name,
            principal.role.as_str()
        )))
    }
}

/// The token in `Authorization`.
fn token(headers: &HeaderMap) -> Result<String, Refusal> {
    let missing = || Refusal::Unauthenticated("no `Authorization` header".into());
    let value = headers.get(header::AUTHORIZATION).ok_or_else(missing)?;
    let value = value
        .to_str()
        .map_err(|_| Refusal::Unauthenticated("the `Authorization` header is not text".into()))?;
    let (scheme, credentials) = value.trim().split_once(' ').unwrap_or((value, ""));
    let credentials = credentials.trim();
    let token = match scheme.to_ascii_lowercase().as_str() {
        "bearer" | "splunk" => credentials.to_string(),
        "basic" => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(credentials)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| {
                    Refusal::Unauthenticated("the `Basic` credentials are not base64 text".into())
                })?;
            // The user name is free (shippers insist on one); the password is the token.
            match decoded.split_once(':') {
                Some((_, password)) => password.to_string(),
                None => decoded,
            }
        }
        _ => {
            return Err(Refusal::Unauthenticated(format!(
                "the `Authorization` scheme `{scheme}` is not supported"
            )));
        }
    };
    if token.is_empty() {
        return Err(Refusal::Unauthenticated(format!(
            "the `{scheme}` credentials are empty"
        )));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_of(value: &str) -> Result<String, Refusal> {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        token(&headers)
    }

    #[test]
    fn the_token_is_found_in_each_scheme() {
        assert_eq!(token_of("Bearer strata_abc").unwrap(), "strata_abc");
        assert_eq!(token_of("bearer  strata_abc ").unwrap(), "strata_abc");
        assert_eq!(token_of("Splunk strata_abc").unwrap(), "strata_abc");
        let basic = base64::engine::general_purpose::STANDARD.encode("elastic:strata_abc");
        assert_eq!(token_of(&format!("Basic {basic}")).unwrap(), "strata_abc");
        let colon = base64::engine::general_purpose::STANDARD.encode("u:strata:x");
        assert_eq!(token_of(&format!("Basic {colon}")).unwrap(), "strata:x");
    }

    #[test]
    fn unusable_credentials_are_named() {
        let refused = |value: &str| match token_of(value) {
            Err(Refusal::Unauthenticated(why)) => why,
            other => panic!("{value}: {other:?}"),
        };
        assert!(refused("Digest abc").contains("`Digest`"));
        assert!(refused("Bearer").contains("empty"));
        assert!(refused("Basic %%%").contains("base64"));
        assert!(
            matches!(token(&HeaderMap::new()), Err(Refusal::Unauthenticated(why)) if why.contains("no `Authorization`"))
        );
    }
}
