//! The conformance suite, run against every backend: local disk, memory, S3 (a real SeaweedFS
//! server) and HDFS (a real MiniDFSCluster). The servers start once for this test binary.

mod suite;

use std::sync::OnceLock;

use tidemark_test_servers::{minidfs, seaweedfs, unique_name};

macro_rules! conformance {
    ($backend:ident, $url:expr) => {
        mod $backend {
            use super::*;

            fn url(tag: &str) -> String {
                ($url)(tag)
            }

            conformance!(@tests
                round_trip_with_streamed_multipart_part,
                large_put_part_uses_multipart_and_reads_back,
                epochs_increase_and_latest_is_newest,
                writer_killed_before_manifest_leaves_previous_latest,
                corrupted_part_is_caught_by_verify,
                corrupted_manifest_makes_latest_fall_back,
                concurrent_writers_race_for_one_epoch,
                restarted_drivers_race_and_one_commits,
                zombie_writer_is_fenced_by_new_generation,
                retention_keeps_n_and_never_deletes_referenced_parts,
                orphan_gc_spares_young_parts,
                parts_collected_before_commit_fail_the_commit,
                old_format_manifest_fixture_still_reads,
                unknown_newer_format_is_a_clear_error,
                zstd_parts_round_trip,
                unfinished_streamed_part_blocks_commit,
                streamed_reads_verify_at_the_end,
                zombie_cannot_commit_into_a_retired_epoch,
                commit_stands_when_only_the_previous_record_vanished,
                small_checkpoint_is_one_manifest_with_inline_parts,
                mixed_inline_and_object_parts,
                inline_parts_with_compression,
                inline_part_referenced_by_a_later_checkpoint,
                retention_with_inline_parts,
                damaged_inline_bytes_are_caught,
                inline_writers_race_for_one_epoch,
                format_2_fixture_still_reads
            );
        }
    };
    (@tests $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                suite::$name(url).await;
            }
        )*
    };
}

/// One temporary directory for all local-disk tests of this binary.
fn local_base() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
}

conformance!(local, |tag: &str| {
    format!("file://{}/{}", local_base().display(), unique_name(tag))
});
conformance!(memory, |tag: &str| format!("memory://{}", unique_name(tag)));
conformance!(s3, |tag: &str| seaweedfs().url(&unique_name(tag)));
conformance!(hdfs, |tag: &str| minidfs()
    .url(&format!("/tidemark/{}", unique_name(tag))));
