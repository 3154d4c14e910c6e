//! Credentials kept out of anything a tool prints.

/// `url` with the values of credential-like query keys and any user info hidden.
pub fn redact(url: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let base = match base.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, host)) if !host.contains('/') || rest.find('@') < rest.find('/') => {
                format!("{scheme}://***@{host}")
            }
            _ => base.to_string(),
        },
        None => base.to_string(),
    };
    if query.is_empty() {
        return base;
    }
    let pairs: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if is_secret(k) => format!("{k}=***"),
            _ => kv.to_string(),
        })
        .collect();
    format!("{base}?{}", pairs.join("&"))
}

/// True for setting names whose values are credentials (`secret_access_key`,
/// `session_token`, `password`, ...).
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["secret", "token", "password", "access_key", "session"]
        .iter()
        .any(|s| k.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials_in_urls() {
        assert_eq!(
            redact("s3://b/p?endpoint=http://h:1&access_key_id=AK&secret_access_key=SK&region=r"),
            "s3://b/p?endpoint=http://h:1&access_key_id=***&secret_access_key=***&region=r"
        );
        assert_eq!(redact("hdfs://user:pw@nn:8020/x"), "hdfs://***@nn:8020/x");
        assert_eq!(redact("file:///tmp/x"), "file:///tmp/x");
        assert!(is_secret("AWS_SECRET_ACCESS_KEY") && !is_secret("region"));
    }
}
