//! A stream checkpoint round trip on S3: a real SeaweedFS server on 127.0.0.1
//! (started for this test binary; the test fails if it cannot start).

mod checkpoint_support;

use checkpoint_support::*;
use tidemark_stream::checkpoint::Recovery;
use tidemark_test_servers::{seaweedfs, unique_name};

#[test]
fn s3_round_trip_resumes_offsets_pending_batches_and_state() {
    let url = seaweedfs().url(&unique_name("stream-checkpoint"));
    let (mut driver, recovery) = Driver::start(&url, 0);
    assert!(matches!(recovery, Recovery::Fresh), "{recovery:?}");
    driver.run(t(1)).expect("checkpoint");
    driver.checkpointer.batch_allocated(t(2)).expect("allocate");
    driver.checkpointer.batch_allocated(t(3)).expect("allocate");
    let last = driver.run(t(2)).expect("checkpoint");
    let state = driver.state.clone();
    drop(driver);

    let resumed = resume(&url, 4_200);
    assert_eq!(resumed.epoch, last.epoch);
    assert_eq!(resumed.last_completed, t(2));
    assert_eq!(resumed.pending, vec![t(3)]);
    assert_eq!(resumed.rerun, vec![t(3), t(4)]);
    assert_eq!(resumed.next_batch, t(5));
    assert_eq!(resumed.offsets, offsets_after(t(2)));
    assert_eq!(resumed.states.get("counts"), Some(&state));
    assert!(!state.is_empty());
}
