//! Requests the service makes to addresses users chose (job callbacks) must never reach
//! our own network: loopback, private, link-local (cloud metadata), CGNAT, multicast and
//! reserved ranges are refused, in every spelling. Names are checked when the job is
//! created and again when connecting, so a name that later resolves elsewhere (DNS
//! rebinding) is still refused.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether `ip` is an ordinary public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let special = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)); // benchmarking 198.18/15
    !special
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    let special = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
        || first == 0x2001 && ip.segments()[1] == 0x0db8; // documentation
    !special
}

/// The IPv4 address an IPv6 address carries: mapped (::ffff:a.b.c.d), compatible
/// (::a.b.c.d), NAT64 (64:ff9b::/96) or 6to4 (2002:AABB:CCDD::).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    let tail = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..6] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified() {
        return Some(tail());
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
        return Some(tail());
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

/// Why a URL's host may not be contacted.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error("points at a private, loopback, link-local or reserved address")]
    NotPublic,
    #[error("has a host name that does not resolve")]
    Unresolvable,
}

/// Checks `url`'s host: an IP literal directly (the URL parser has already normalised
/// spellings such as `2130706433`, `0x7f.1` or `[::ffff:127.0.0.1]`), a name by resolving it.
pub async fn check_url(url: &url::Url) -> Result<(), EgressError> {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => public_or_refuse(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => public_or_refuse(IpAddr::V6(ip)),
        Some(url::Host::Domain(name)) => {
            let port = url.port_or_known_default().unwrap_or(443);
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
                .await
                .map_err(|_| EgressError::Unresolvable)?
                .collect();
            if addresses.is_empty() {
                return Err(EgressError::Unresolvable);
            }
            addresses
                .iter()
                .try_for_each(|address| public_or_refuse(address.ip()))
        }
        None => Err(EgressError::Unresolvable),
    }
}

fn public_or_refuse(ip: IpAddr) -> Result<(), EgressError> {
    if is_public(ip) {
        Ok(())
    } else {
        Err(EgressError::NotPublic)
    }
}

/// A resolver for the HTTP client that drops every non-public address, so the connection
/// can only go where the check at creation said it may.
pub struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|address| is_public(address.ip()))
                .collect();
            if found.is_empty() {
                return Err(Box::new(EgressError::NotPublic) as _);
            }
            Ok(Box::new(found.into_iter()) as Addrs)
        })
    }
}

impl PublicOnlyResolver {
    pub fn shared() -> Arc<Self> {
        Arc::new(Self)
    }
}

/// Refuses a job's `callback_url` whose host is, or resolves to, an internal address.
pub async fn check_callback_url(
    url: Option<&str>,
    allow_private: bool,
) -> domain::error::ServiceResult<()> {
    use domain::error::ServiceError;
    let Some(url) = url.filter(|_| !allow_private) else {
        return Ok(());
    };
    let url = url::Url::parse(url).map_err(ServiceError::internal)?;
    check_url(&url)
        .await
        .map_err(|why| ServiceError::invalid_field("callback_url", format!("callback_url {why}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_of(url: &str) -> IpAddr {
        match url::Url::parse(url).unwrap().host().unwrap() {
            url::Host::Ipv4(ip) => ip.into(),
            url::Host::Ipv6(ip) => ip.into(),
            url::Host::Domain(d) => panic!("{url} parsed as the name {d}"),
        }
    }

    #[test]
    fn every_spelling_of_an_internal_address_is_refused() {
        for url in [
            "http://127.0.0.1/",
            "http://127.1/",
            "http://0x7f.0.0.1/",
            "http://2130706433/",
            "http://017700000001/",
            "http://0/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[2002:a00:1::]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://100.64.0.1/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://240.0.0.1/",
        ] {
            assert!(!is_public(host_of(url)), "{url} must be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for url in ["http://93.184.216.34/", "http://[2606:4700::1111]/"] {
            assert!(is_public(host_of(url)), "{url}");
        }
    }

    #[tokio::test]
    async fn names_that_resolve_inside_are_refused_at_check_and_at_connect() {
        let url = url::Url::parse("http://localhost:9/hook").unwrap();
        assert!(matches!(check_url(&url).await, Err(EgressError::NotPublic)));
        let resolved = PublicOnlyResolver
            .resolve("localhost".parse().unwrap())
            .await;
        assert!(resolved.is_err(), "no loopback address comes out");
    }
}
