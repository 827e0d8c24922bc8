//! A data directory written by an earlier release opens, with identical query answers, in this
//! one: once as it was written, and again after this version has checkpointed it in its own
//! record format (see `tests/golden/README.md`).

use std::path::{Path, PathBuf};

use citytel_ingest::clock::Clock;
use citytel_ingest::service::{self, Running};
use citytel_proto::v1::query_service_client::QueryServiceClient;
use citytel_tests::golden::{self, ASKED_AT};

/// The golden directories, each with the answers its release gave.
fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(name)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read golden dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// citytel on `dir` with a manual clock at the time the answers were asked, retention off (the
/// data is older than retention would keep), every listener on loopback port 0.
async fn open(dir: &Path) -> Running {
    let overrides = [
        format!("storage.data_dir={:?}", dir.display().to_string()),
        "storage.fsync=\"never\"".to_string(),
        "storage.retention_raw=\"forever\"".to_string(),
        "storage.retention_minute=\"forever\"".to_string(),
        "storage.dead_letter_retention=\"forever\"".to_string(),
        "endpoint.listen=\"127.0.0.1:0\"".to_string(),
        "grpc.listen=\"127.0.0.1:0\"".to_string(),
        "http.enabled=false".to_string(),
        "metrics.enabled=false".to_string(),
        "api.authentication=false".to_string(),
    ];
    let settings = citytel_ingest::config::load_str(None, &overrides)
        .expect("configuration")
        .validate()
        .expect("valid configuration");
    service::start(settings, Clock::manual(ASKED_AT))
        .await
        .expect("the golden directory opens")
}

async fn answers(running: &Running) -> String {
    let mut client = QueryServiceClient::connect(format!("http://{}", running.grpc_addr))
        .await
        .expect("gRPC connects");
    golden::answers(&mut client).await
}

/// Fails with the first line that differs, and keeps the whole answer for a look.
fn assert_same(name: &str, got: &str, want: &str, when: &str) {
    if got == want {
        return;
    }
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts");
    let _ = std::fs::create_dir_all(&artifacts);
    let kept = artifacts.join(format!("golden-{name}-{when}.txt"));
    let _ = std::fs::write(&kept, got);
    let (line, (g, w)) = got
        .lines()
        .zip(want.lines())
        .enumerate()
        .find(|(_, (g, w))| g != w)
        .map_or(
            (got.lines().count().min(want.lines().count()), ("", "")),
            |(i, p)| (i, p),
        );
    panic!(
        "{name} {when}: answers differ from the release's at line {}:\n  got:  {g}\n  want: {w}\n\
         (whole answer in {})",
        line + 1,
        kept.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_format_1_directory_opens_with_the_answers_of_its_release() {
    let golden = golden("format-1");
    let want = std::fs::read_to_string(golden.join("answers.txt")).expect("golden answers");
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path().join("data");
    copy_dir(&golden.join("data"), &dir);

    let running = open(&dir).await;
    assert!(
        running.opened.undecodable.is_empty(),
        "every record decodes: {:?}",
        running.opened.undecodable
    );
    assert!(
        running.opened.replay.records > 0,
        "the WAL tail is replayed"
    );
    assert_same("format-1", &answers(&running).await, &want, "as written");
    running.shutdown().await.expect("clean shutdown");

    // The shutdown wrote a checkpoint in today's format; it answers as the release did after
    // its own checkpoint (the WAL tail now sits in segments, so bucketed queries come from
    // rollups: the same values at a coarser stored resolution).
    let want = std::fs::read_to_string(golden.join("answers-checkpointed.txt")).expect("answers");
    let running = open(&dir).await;
    assert_eq!(
        running.opened.replay.records, 0,
        "the checkpoint covers everything"
    );
    assert_same(
        "format-1",
        &answers(&running).await,
        &want,
        "after a checkpoint",
    );
    running.shutdown().await.expect("clean shutdown");
}
