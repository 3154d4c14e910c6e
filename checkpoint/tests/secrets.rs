//! Credentials in a checkpoint URL or in storage options never show up in an error message, in
//! `Debug` output or in `location()`: every way this crate can fail to open, reach or
//! authenticate against a store is tried, and every string it produces is searched.

use std::{error::Error as _, net::TcpListener, time::Duration};

use tidemark_checkpoint::{CheckpointError, CheckpointOptions, CheckpointStore, blocking};
use tidemark_test_servers::{
    S3_ACCESS_KEY, S3_BUCKET, S3_REGION, S3_SECRET_KEY, seaweedfs, unique_name,
};

const URL_SECRET: &str = "url-secret-5b0c9e";
const OPTION_SECRET: &str = "option-secret-77d1aa";
const PASSWORD: &str = "hunter2-pass-c0ffee";
const TOKEN: &str = "session-token-f00d42";

/// Every secret this test hands out, and the real server's secret.
const SECRETS: [&str; 5] = [URL_SECRET, OPTION_SECRET, PASSWORD, TOKEN, S3_SECRET_KEY];

fn assert_clean(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{what} leaks {secret:?}: {text}");
    }
}

/// Display, Debug and every source in the chain.
fn assert_error_clean(what: &str, error: &CheckpointError) {
    assert_clean(what, &error.to_string());
    assert_clean(what, &format!("{error:?}"));
    let mut source = error.source();
    while let Some(e) = source {
        assert_clean(what, &e.to_string());
        assert_clean(what, &format!("{e:?}"));
        source = e.source();
    }
}

fn options() -> CheckpointOptions {
    CheckpointOptions::default()
        .with_request_timeout(Duration::from_millis(800))
        .with_storage_option("aws_secret_access_key", OPTION_SECRET)
}

/// A listener that accepts connections and never answers.
fn silent_port() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// The same URLs through the blocking API (outside any runtime, as it requires).
fn check_blocking(bad: &[String], dead: &str) {
    for url in bad {
        match blocking::CheckpointStore::open_with(url, options()) {
            Err(e) => assert_error_clean(url, &e),
            Ok(store) => panic!("{url} opened: {store:?}"),
        }
    }
    let store = blocking::CheckpointStore::open_with(dead, options()).unwrap();
    assert_clean("Debug of the blocking store", &format!("{store:?}"));
    assert_error_clean(
        "blocking latest()",
        &store.latest().expect_err("a dead server"),
    );
}

#[test]
fn no_secret_appears_in_errors_or_debug_output() {
    let (_listener, port) = silent_port();
    let (bad, dead) = urls(port);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(check_async(&bad, &dead));
    drop(rt);
    check_blocking(&bad, &dead[0]);
}

/// Locations that cannot be opened, and stores that open but whose servers never answer.
fn urls(port: u16) -> (Vec<String>, Vec<String>) {
    let s3_query = format!(
        "endpoint=http://127.0.0.1:{port}&region=us-east-1&access_key_id=AKID&secret_access_key={URL_SECRET}&session_token={TOKEN}&allow_http=true"
    );
    let bad = vec![
        format!("ftp://user:{PASSWORD}@host/ckpt?secret_access_key={URL_SECRET}"),
        format!("s3://bucket/ckpt?{s3_query}&no_such_option=1"),
        format!("s3:///ckpt?{s3_query}"),
        format!("hdfs://user:{PASSWORD}@/ckpt?token={TOKEN}"),
        format!("not a url?password={PASSWORD}"),
    ];
    let dead = vec![
        format!("s3://bucket/ckpt?{s3_query}"),
        format!("hdfs://user:{PASSWORD}@127.0.0.1:{port}/ckpt"),
    ];
    (bad, dead)
}

async fn check_async(bad: &[String], dead: &[String]) {
    for url in bad {
        match CheckpointStore::open_with(url, options()).await {
            Err(e) => assert_error_clean(url, &e),
            Ok(store) => panic!("{url} opened: {store:?}"),
        }
    }
    // Timeouts name objects, never credentials.
    for url in dead {
        let store = CheckpointStore::open_with(url, options()).await.unwrap();
        assert_clean("location()", store.location());
        assert_clean("Debug of the store", &format!("{store:?}"));
        assert!(store.location().contains("***"), "{}", store.location());
        let latest = store.latest().await.expect_err("a dead server");
        assert!(
            matches!(latest, CheckpointError::Timeout { .. }),
            "{latest:?}"
        );
        assert_error_clean("latest()", &latest);
        assert_error_clean("begin()", &store.begin().await.expect_err("a dead server"));
        assert_error_clean("list()", &store.list().await.expect_err("a dead server"));
    }
    assert_clean("Debug of the options", &format!("{:?}", options()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_credentials_are_not_echoed() {
    let server = seaweedfs();
    let prefix = unique_name("secrets");
    let url = |secret: &str| {
        format!(
            "s3://{S3_BUCKET}/{prefix}?endpoint={}&region={S3_REGION}&access_key_id={S3_ACCESS_KEY}&secret_access_key={secret}&allow_http=true",
            server.endpoint()
        )
    };
    // The real secret works (so the failure below is the credentials, nothing else) ...
    let good = CheckpointStore::open(&url(S3_SECRET_KEY)).await.unwrap();
    assert_clean("location()", good.location());
    let mut w = good.begin().await.unwrap();
    w.put_part("metadata", &b"signed"[..]).await.unwrap();
    w.commit().await.unwrap();
    // ... a wrong one is rejected by the server, and neither appears in what we report.
    let forged = CheckpointStore::open(&url(URL_SECRET)).await.unwrap();
    for error in [
        forged.latest().await.expect_err("bad signature"),
        forged.begin().await.expect_err("bad signature"),
        forged.list().await.expect_err("bad signature"),
    ] {
        assert!(matches!(error, CheckpointError::Store { .. }), "{error:?}");
        assert_error_clean("a rejected request", &error);
    }
}
