//! Serde adapters: environment variables carry plain numbers in a unit their name says
//! (`_SECS`, `_MS`, `_MIB`…); the settings hold `Duration`s and byte counts.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub fn secs<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_secs)
}

pub fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

pub fn hours<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(|h| Duration::from_secs(h.saturating_mul(3600)))
}

/// Hours, 0 meaning never.
pub fn optional_hours<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Ok(Some(hours(d)?).filter(|every| !every.is_zero()))
}

/// Seconds, 0 meaning never.
pub fn optional_secs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Ok(Some(secs(d)?).filter(|every| !every.is_zero()))
}

pub fn days<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(|days| Duration::from_secs(days.saturating_mul(86_400)))
}

pub fn mib<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    u64::deserialize(d).map(|m| m.saturating_mul(1024 * 1024))
}

pub fn mib_usize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    usize::deserialize(d).map(|m| m.saturating_mul(1024 * 1024))
}

pub fn kib_usize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    usize::deserialize(d).map(|k| k.saturating_mul(1024))
}

/// An empty value is the same as none.
pub fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d).map(|v| v.filter(|v| !v.trim().is_empty()))
}

/// A listening address, or `off` (or nothing) for none.
pub fn listen_address<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<std::net::SocketAddr>, D::Error> {
    match non_empty(d)?.as_deref().map(str::trim) {
        None | Some("off") => Ok(None),
        Some(address) => address.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

pub fn minutes<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(|m| Duration::from_secs(m.saturating_mul(60)))
}

/// A day of the week by name (`monday` or `mon`, any case).
pub fn weekday<'de, D: Deserializer<'de>>(d: D) -> Result<chrono::Weekday, D::Error> {
    let name = String::deserialize(d)?;
    name.trim()
        .parse()
        .map_err(|_| serde::de::Error::custom(format!("{name:?} is not a day of the week")))
}
