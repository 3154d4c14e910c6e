//! Keeping credentials out of messages.
//!
//! A checkpoint URL may carry credentials (`s3://b/p?access_key_id=..&secret_access_key=..`, or
//! `scheme://user:password@host`), and storage options may too. Everything this crate shows of a
//! location (errors, `Debug`, [`crate::CheckpointStore::location`]) goes through [`url`], which
//! masks the values of credential-like query keys and the password of the user info; free text
//! from other libraries about a location goes through `Secrets::scrub`, which masks every
//! secret value it was given. [`url`] and [`is_secret_key`] are public so that tools built on
//! this crate show locations the same way.

/// What replaces a secret.
pub const MASK: &str = "***";

/// Substrings of query or option keys whose values are credentials (compared in lowercase).
const SECRET_KEY_PARTS: [&str; 8] = [
    "secret",
    "token",
    "password",
    "passwd",
    "credential",
    "session",
    "key",
    "signature",
];

/// Secret values shorter than this are not searched for in free text (they would mask
/// ordinary words); the structured masking of [`url`] still hides them.
const MIN_SCRUBBED_LEN: usize = 4;

/// True when a query or option key names a credential.
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_KEY_PARTS.iter().any(|part| key.contains(part))
}

/// `location` with credentials masked: the password of its user info and the values of
/// credential-like query keys. Works on unparsable text too; everything after the first `?` is
/// treated as the query (a `#` in a raw secret does not end it).
pub fn url(location: &str) -> String {
    match location.split_once('?') {
        Some((base, query)) => format!("{}?{}", mask_user_info(base), mask_query(query)),
        None => mask_user_info(location),
    }
}

/// `scheme://user:password@host/...` → `scheme://user:***@host/...`. The user info is what
/// precedes the last `@` (a raw `/` in a password does not hide it).
fn mask_user_info(base: &str) -> String {
    let Some((scheme, rest)) = base.split_once("://") else {
        return base.to_string();
    };
    let Some((user_info, host)) = rest.rsplit_once('@') else {
        return base.to_string();
    };
    match user_info.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:{MASK}@{host}"),
        None => base.to_string(),
    }
}

fn mask_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if is_secret_key(&decode(key)) => format!("{key}={MASK}"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Percent- (and `+`-) decoded text.
fn decode(text: &str) -> String {
    url::form_urlencoded::parse(text.as_bytes())
        .next()
        .map_or_else(|| text.to_string(), |(k, _)| k.into_owned())
}

/// The secret values of one location and its storage options.
#[derive(Default)]
pub(crate) struct Secrets(Vec<String>);

impl Secrets {
    /// Collects the password of the user info, the values of credential-like query keys (raw
    /// and decoded) and of credential-like storage options.
    pub fn new(location: &str, options: &[(String, String)]) -> Self {
        let mut values = Vec::new();
        if let Ok(parsed) = url::Url::parse(location) {
            values.extend(parsed.password().map(str::to_string));
            values.extend(parsed.password().map(decode));
            values.extend(
                parsed
                    .query_pairs()
                    .filter(|(k, _)| is_secret_key(k))
                    .map(|(_, v)| v.into_owned()),
            );
        }
        if let Some((_, query)) = location.split_once('?') {
            values.extend(
                query
                    .split('&')
                    .filter_map(|pair| pair.split_once('='))
                    .filter(|(k, _)| is_secret_key(&decode(k)))
                    .map(|(_, v)| v.to_string()),
            );
        }
        values.extend(
            options
                .iter()
                .filter(|(k, _)| is_secret_key(k))
                .map(|(_, v)| v.clone()),
        );
        values.retain(|v| v.len() >= MIN_SCRUBBED_LEN);
        // Longest first, so a secret containing another is masked whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Secrets(values)
    }

    /// `text` with every secret value masked.
    pub fn scrub(&self, text: &str) -> String {
        self.0
            .iter()
            .fold(text.to_string(), |text, secret| text.replace(secret, MASK))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_credentials_are_masked() {
        let raw = "s3://b/p?endpoint=http://h:1&region=r&access_key_id=AKIDEXAMPLE&secret_access_key=wJalr%2FK7MDENG&aws_session_token=tok&allow_http=true";
        let shown = url(raw);
        assert_eq!(
            shown,
            "s3://b/p?endpoint=http://h:1&region=r&access_key_id=***&secret_access_key=***&aws_session_token=***&allow_http=true"
        );
        for secret in ["AKIDEXAMPLE", "wJalr", "tok&"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn user_info_password_is_masked() {
        assert_eq!(
            url("hdfs://alice:hunter22@nn:8020/ckpt"),
            "hdfs://alice:***@nn:8020/ckpt"
        );
        assert_eq!(
            url("hdfs://alice@nn:8020/ckpt"),
            "hdfs://alice@nn:8020/ckpt"
        );
        assert_eq!(url("file:///tmp/ckpt"), "file:///tmp/ckpt");
        assert_eq!(url("not a url ?password=x"), "not a url ?password=***");
        assert_eq!(url("s3://u:pa/ss@h/p?k=v"), "s3://u:***@h/p?k=v");
        assert_eq!(url("s3://b/p?token=ab#cd&x=1"), "s3://b/p?token=***&x=1");
    }

    #[test]
    fn encoded_keys_and_values_are_found() {
        let raw = "s3://b/p?secret%5Faccess%5Fkey=abc%2Bdef";
        assert_eq!(url(raw), "s3://b/p?secret%5Faccess%5Fkey=***");
        let secrets = Secrets::new(raw, &[]);
        assert_eq!(
            secrets.scrub("saw abc+def and abc%2Bdef"),
            "saw *** and ***"
        );
    }

    #[test]
    fn scrub_masks_option_values_but_not_short_words() {
        let secrets = Secrets::new(
            "s3://b/p?secret_access_key=b",
            &[
                ("aws_secret_access_key".into(), "opt-secret-value".into()),
                ("region".into(), "us-east-1".into()),
            ],
        );
        assert_eq!(
            secrets.scrub("bucket b: opt-secret-value rejected in us-east-1"),
            "bucket b: *** rejected in us-east-1"
        );
    }
}
