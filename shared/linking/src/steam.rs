//! Steam signs users in with OpenID 2.0, not OAuth: the user is sent to Steam with
//! `checkid_setup`, comes back with a signed assertion, and the assertion is checked by
//! posting it back to Steam (`check_authentication`, which must answer `is_valid:true`). The
//! SteamID64 ends the claimed id. Identity only: there is no token.

use std::collections::BTreeMap;

use crate::oauth::PlatformError;
use crate::platforms::Identity;

const OPENID_NS: &str = "http://specs.openid.net/auth/2.0";
const IDENTIFIER_SELECT: &str = "http://specs.openid.net/auth/2.0/identifier_select";

/// Steam's sign-in page, coming back to `return_to` (which carries our state).
pub fn authorize_url(
    endpoint: &str,
    return_to: &str,
    realm: &str,
) -> Result<String, url::ParseError> {
    let mut url = url::Url::parse(endpoint)?;
    url.query_pairs_mut()
        .append_pair("openid.ns", OPENID_NS)
        .append_pair("openid.mode", "checkid_setup")
        .append_pair("openid.return_to", return_to)
        .append_pair("openid.realm", realm)
        .append_pair("openid.identity", IDENTIFIER_SELECT)
        .append_pair("openid.claimed_id", IDENTIFIER_SELECT);
    Ok(url.into())
}

/// The fields an assertion must sign for us to rely on them.
const MUST_SIGN: [&str; 6] = [
    "op_endpoint",
    "claimed_id",
    "identity",
    "return_to",
    "response_nonce",
    "assoc_handle",
];

/// Checks the assertion Steam sent back (`params`: the callback's query) and answers the
/// SteamID64 it proves. `return_to` is what we sent: an assertion made for another place
/// is refused.
pub async fn verify(
    http: &reqwest::Client,
    endpoint: &str,
    params: &[(String, String)],
    return_to: &str,
) -> Result<Identity, PlatformError> {
    let fields = assertion_fields(params)?;
    let field = |name: &str| fields.get(name).copied();
    if field("openid.mode") != Some("id_res") {
        return Err(PlatformError("not a positive assertion".into()));
    }
    if field("openid.op_endpoint") != Some(endpoint) || field("openid.return_to") != Some(return_to)
    {
        return Err(PlatformError(
            "an assertion for another endpoint or return address".into(),
        ));
    }
    let signed: Vec<&str> = field("openid.signed")
        .unwrap_or_default()
        .split(',')
        .collect();
    if !MUST_SIGN.iter().all(|name| signed.contains(name))
        || field("openid.claimed_id") != field("openid.identity")
    {
        return Err(PlatformError(
            "the assertion does not sign who it names".into(),
        ));
    }
    let steam_id = steam_id(endpoint, field("openid.claimed_id").unwrap_or_default()).ok_or(
        PlatformError("the claimed id is not a Steam account".into()),
    )?;
    // Steam checks exactly the fields read here, each once.
    let mut check: Vec<(&str, &str)> = fields
        .into_iter()
        .filter(|(key, _)| *key != "openid.mode")
        .collect();
    check.push(("openid.mode", "check_authentication"));
    let answer = http
        .post(endpoint)
        .form(&check)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    if !answer.lines().any(|line| line.trim() == "is_valid:true") {
        return Err(PlatformError("Steam did not confirm the assertion".into()));
    }
    Ok(Identity {
        display_name: format!("Steam {steam_id}"),
        external_id: steam_id,
    })
}

/// The assertion's `openid.*` fields. One sent twice is refused: we would read one copy
/// and Steam might check the other.
fn assertion_fields(params: &[(String, String)]) -> Result<BTreeMap<&str, &str>, PlatformError> {
    let mut fields = BTreeMap::new();
    for (key, value) in params.iter().filter(|(key, _)| key.starts_with("openid.")) {
        if fields.insert(key.as_str(), value.as_str()).is_some() {
            return Err(PlatformError(format!("the assertion repeats {key}")));
        }
    }
    Ok(fields)
}

/// The SteamID64 at the end of a claimed id `https://<steam host>/openid/id/<17 digits>`,
/// on the endpoint's own host.
fn steam_id(endpoint: &str, claimed: &str) -> Option<String> {
    let endpoint = url::Url::parse(endpoint).ok()?;
    let claimed_url = url::Url::parse(claimed).ok()?;
    let id = claimed_url.path().strip_prefix("/openid/id/")?;
    (claimed_url.origin() == endpoint.origin()
        && id.len() == 17
        && id.bytes().all(|b| b.is_ascii_digit()))
    .then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_assertion_repeating_a_field_is_refused() {
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let once = [pair("openid.mode", "id_res"), pair("state", "s")];
        assert_eq!(assertion_fields(&once).unwrap().len(), 1);
        let twice = [
            pair("openid.claimed_id", "a"),
            pair("openid.claimed_id", "b"),
        ];
        assert!(assertion_fields(&twice).is_err());
    }

    #[test]
    fn the_steam_id_ends_a_claimed_id_on_steams_own_host() {
        let endpoint = "https://steamcommunity.com/openid/login";
        let good = "https://steamcommunity.com/openid/id/76561197960287930";
        assert_eq!(
            steam_id(endpoint, good).as_deref(),
            Some("76561197960287930")
        );
        for bad in [
            "https://evil.example/openid/id/76561197960287930",
            "https://steamcommunity.com/openid/id/7656119796028793",
            "https://steamcommunity.com/openid/id/76561197960287930/x",
            "https://steamcommunity.com/profiles/76561197960287930",
            "not a url",
        ] {
            assert_eq!(steam_id(endpoint, bad), None, "{bad}");
        }
    }
}
