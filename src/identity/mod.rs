//! Who is calling: exactly one principal per request, or a refusal (SPEC §2).
//!
//! Sources, in precedence order: an AccessKey signature ([`signature`]), the trusted
//! identity header (believed only from `trusted_proxies`), the client certificate of an
//! mTLS connection. A request carrying both a signature and the header is refused; so is
//! the header from any peer not trusted, and an STS token.

pub mod mtls;
pub mod signature;

use crate::config;
use crate::principals::PrincipalId;
use crate::request::ParsedRequest;
use crate::snapshot::Snapshot;
use http::HeaderMap;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// What the connection tells about the caller.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    /// The connection is TLS (`acs:SecureTransport`).
    pub secure: bool,
    /// The verified client certificate's identity (URI SAN, else DNS SAN, else CN).
    pub client_id: Option<String>,
}

/// The established caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub principal: PrincipalId,
    /// `acs:SourceIp`.
    pub source_ip: IpAddr,
}

/// Why no caller could be established. `response.rs` maps each to its status and
/// Alibaba `Code`; the message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// No identity, an unknown principal, an untrusted identity header, two identities.
    #[error("{0}")]
    Refused(String),
    /// The signature material is missing or malformed.
    #[error("{0}")]
    IncompleteSignature(String),
    #[error("{0}")]
    SignatureDoesNotMatch(String),
    #[error("{0}")]
    UnknownAccessKey(String),
    #[error("{0}")]
    TimestampMalformed(String),
    #[error("{0}")]
    TimestampExpired(String),
    #[error("{0}")]
    NonceUsed(String),
    /// The replay window's nonce store is full: retry later.
    #[error(
        "too many signed requests within the replay window to remember their nonces; retry later"
    )]
    NonceStoreFull,
    /// `[cluster] on_unavailable = "deny"` and Redis could not be asked about a nonce.
    #[error("The shared nonce store (Redis) is unreachable ({0}), so the request's nonce cannot be checked against the other replicas; retry later.")]
    NonceStoreUnavailable(String),
}

fn refuse(message: impl Into<String>) -> IdentityError {
    IdentityError::Refused(message.into())
}

/// Establishes the caller of `request`, or refuses with 401 (signature errors use their
/// own codes), claiming a signed request's nonce in `replay`. `now` is Unix seconds, for
/// signature timestamps.
pub fn resolve(
    snapshot: &Snapshot,
    settings: &config::Identity,
    replay: &signature::NonceCache,
    peer: &Peer,
    headers: &HeaderMap,
    request: &ParsedRequest,
    now: i64,
) -> Result<Identity, IdentityError> {
    let (identity, unclaimed) = resolve_unclaimed(snapshot, settings, peer, headers, request, now)?;
    if let Some(verified) = unclaimed {
        let seen = verified.claim_in(replay, now);
        verified.settle(seen)?;
    }
    Ok(identity)
}

/// [`resolve`] but for the nonce: a signed request comes back with its [`Verified`]
/// signature, whose nonce the caller claims (the proxy: in its nonce store, which may be
/// shared by replicas) before believing the identity.
///
/// [`Verified`]: signature::Verified
pub fn resolve_unclaimed(
    snapshot: &Snapshot,
    settings: &config::Identity,
    peer: &Peer,
    headers: &HeaderMap,
    request: &ParsedRequest,
    now: i64,
) -> Result<(Identity, Option<signature::Verified>), IdentityError> {
    let source_ip = source_ip(peer.addr.ip(), headers, &settings.trusted_proxies);
    let credentials = &request.credentials;
    if credentials.security_token.is_some()
        || credentials.acs_security_token.is_some()
        || credentials.bearer_token.is_some()
    {
        return Err(refuse("STS security tokens and bearer tokens are not supported by ramgate; sign with an AccessKey of a RAM user or role instead"));
    }
    let mut claimed = headers.get_all(settings.header.as_str()).iter();
    let header = claimed.next();
    if claimed.next().is_some() {
        return Err(refuse(format!(
            "the identity header {} is given more than once",
            settings.header
        )));
    }
    let signed = credentials.has_v3_signature()
        || credentials.has_v1_signature()
        || credentials.access_key_id.is_some();
    let mut verified = None;
    let principal = if signed {
        if header.is_some() {
            return Err(refuse(format!(
                "the request is signed and also carries the identity header {}: one identity per request",
                settings.header
            )));
        }
        if !settings.signatures {
            return Err(refuse(
                "AccessKey signatures are disabled on this proxy ([identity] signatures = false)",
            ));
        }
        let signature = signature::verify_signature(snapshot, settings, headers, request, now)?;
        let principal = signature.principal;
        verified = Some(signature);
        principal
    } else if let Some(value) = header {
        if !is_trusted(peer.addr.ip(), &settings.trusted_proxies) {
            return Err(refuse(format!(
                "the identity header {} is only accepted from trusted proxies, and {} is not one",
                settings.header,
                peer.addr.ip()
            )));
        }
        let arn = value
            .to_str()
            .map_err(|_| refuse("the identity header is not valid text"))?;
        snapshot
            .directory
            .by_arn(&snapshot.account.id, arn)
            .ok_or_else(|| {
                refuse(format!(
                    "{arn:?} is not a principal of account {}",
                    snapshot.account.id
                ))
            })?
    } else if let Some(id) = &peer.client_id {
        *snapshot
            .directory
            .mtls_ids
            .get(id.as_str())
            .ok_or_else(|| {
                refuse(format!(
                    "the client certificate identity {id:?} belongs to no principal"
                ))
            })?
    } else {
        return Err(refuse("the request carries no identity: sign it with an AccessKey, or send it through a trusted proxy"));
    };
    Ok((
        Identity {
            principal,
            source_ip,
        },
        verified,
    ))
}

pub fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    trusted.iter().any(|net| net.contains(&ip))
}

/// The TCP peer, or, when the peer is a trusted proxy, the right-most `X-Forwarded-For`
/// entry that is not itself a trusted proxy.
pub fn source_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let mut hops: Vec<IpAddr> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else {
            return peer;
        };
        for entry in text.split(',') {
            match entry.trim().parse() {
                Ok(ip) => hops.push(ip),
                // An unreadable entry: trust nothing to its left.
                Err(_) => hops.clear(),
            }
        }
    }
    hops.into_iter()
        .rev()
        .find(|ip| !is_trusted(*ip, trusted))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn source_ip_walks_forwarded_for_from_the_right() {
        let trusted = nets(&["10.0.0.0/8"]);
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "1.1.1.1, 2.2.2.2, 10.0.0.5".parse().unwrap(),
        );
        assert_eq!(
            source_ip("10.0.0.1".parse().unwrap(), &h, &trusted),
            "2.2.2.2".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            source_ip("3.3.3.3".parse().unwrap(), &h, &trusted),
            "3.3.3.3".parse::<IpAddr>().unwrap(),
            "untrusted peers' headers are ignored"
        );
        assert_eq!(
            source_ip("10.0.0.1".parse().unwrap(), &HeaderMap::new(), &trusted),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn mapped_ipv6_peers_are_matched_as_ipv4() {
        assert!(is_trusted(
            "::ffff:127.0.0.1".parse().unwrap(),
            &nets(&["127.0.0.1/32"])
        ));
        assert!(!is_trusted(
            "127.0.0.2".parse().unwrap(),
            &nets(&["127.0.0.1/32"])
        ));
    }
}
