//! S3 settings from the usual `AWS_*` environment variables, against a real SeaweedFS server.
//!
//! Setting the environment inside a threaded test harness is unsound, so the test re-runs
//! itself as a child process whose environment is set at spawn, once per case:
//!
//! * `env`: endpoint, region, credentials and `allow_http` only in the environment; the URL is
//!   a bare `s3://bucket/prefix`. A checkpoint is written and read back.
//! * `url_beats_env`: the environment holds a wrong secret, the URL's query the right one. The
//!   URL wins (the documented order: environment, then URL, then options).
//! * `forged`: only the environment, with a wrong secret: the server rejects the signatures.
#![cfg(feature = "s3")]

use std::time::Duration;

use bytes::Bytes;
use tidemark_checkpoint::{CheckpointError, CheckpointOptions, blocking::CheckpointStore};
use tidemark_test_servers::{
    S3_ACCESS_KEY, S3_BUCKET, S3_REGION, S3_SECRET_KEY,
    child::{assert_succeeded, rerun_self},
    seaweedfs, unique_name,
};

/// Set in the child: which case to run.
const CHILD_CASE: &str = "TIDEMARK_AWS_ENV_CHILD_CASE";
/// Set in the child: the checkpoint URL.
const CHILD_URL: &str = "TIDEMARK_AWS_ENV_CHILD_URL";
/// This test's name, so the child runs only it.
const TEST_NAME: &str = "s3_settings_come_from_aws_environment_variables";

#[test]
fn s3_settings_come_from_aws_environment_variables() {
    match (std::env::var(CHILD_CASE), std::env::var(CHILD_URL)) {
        (Ok(case), Ok(url)) => child(&case, &url),
        _ => parent(),
    }
}

fn options() -> CheckpointOptions {
    CheckpointOptions::default().with_request_timeout(Duration::from_secs(10))
}

fn child(case: &str, url: &str) {
    let store = CheckpointStore::open_with(url, options()).expect("open");
    match case {
        "env" | "url_beats_env" => {
            let mut w = store.begin().expect("begin");
            w.put_part("metadata", Bytes::from_static(b"configured by AWS_*"))
                .expect("put");
            let epoch = w.commit().expect("commit");
            let latest = store.latest().expect("latest").expect("a checkpoint");
            assert_eq!(latest.epoch(), epoch);
            assert_eq!(
                latest.read_part("metadata").expect("read"),
                Bytes::from_static(b"configured by AWS_*")
            );
        }
        "forged" => match store.latest() {
            Err(CheckpointError::Store { .. }) => {}
            other => panic!("a request signed with a wrong secret must fail, got {other:?}"),
        },
        other => panic!("unknown case {other:?}"),
    }
}

fn parent() {
    let server = seaweedfs();
    let bare = format!("s3://{S3_BUCKET}/{}", unique_name("aws-env"));
    let with_query = format!(
        "{bare}?endpoint={}&region={S3_REGION}&access_key_id={S3_ACCESS_KEY}&secret_access_key={S3_SECRET_KEY}&allow_http=true",
        server.endpoint()
    );
    let cases = [
        ("env", bare.as_str(), S3_SECRET_KEY),
        ("url_beats_env", with_query.as_str(), "not-the-secret"),
        ("forged", bare.as_str(), "not-the-secret"),
    ];
    for (case, url, secret) in cases {
        let mut command = rerun_self(TEST_NAME);
        // Only the settings under test: nothing inherited from the developer's environment.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("AWS_") {
                command.env_remove(key);
            }
        }
        let output = command
            .env(CHILD_CASE, case)
            .env(CHILD_URL, url)
            .env("AWS_ENDPOINT", server.endpoint())
            .env("AWS_REGION", S3_REGION)
            .env("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_ALLOW_HTTP", "true")
            .output()
            .expect("run the child");
        assert_succeeded(&output, &format!("the child of case {case}"));
    }
}
