//! Timeouts and bounds: deadlines, the cool-down after a failed server, full queues, idle
//! workers and caches full of loose objects.

use super::*;

#[tokio::test]
async fn a_hanging_server_times_out_while_other_repositories_commit() {
    let dir = tempfile::tempdir().unwrap();
    let good = remote(dir.path());
    let hanging = hanging_server();
    let o = WriterOptions {
        unreachable_cooldown: Duration::ZERO,
        ..opts()
    };
    let w = Writer::new(dir.path().join("cache"), o);
    let start = Instant::now();
    let mut stuck = Box::pin(w.submit(key(&hanging), Credentials::None, change("api", "1")));
    assert!(futures::poll!(&mut stuck).is_pending());
    let out = w
        .submit(key(&good), Credentials::None, change("api", "1"))
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Committed { .. }));
    let good_done = start.elapsed();
    let err = stuck.await.unwrap_err();
    let stuck_done = start.elapsed();
    let GitError::Timeout {
        operation,
        after_secs,
        ..
    } = &err
    else {
        panic!("expected Timeout, got {err:?}")
    };
    assert_eq!((operation.as_str(), *after_secs), ("fetch", 2), "{err}");
    assert!(
        stuck_done >= Duration::from_millis(1900) && stuck_done < Duration::from_secs(10),
        "timed out after {stuck_done:?}"
    );
    assert!(
        good_done + Duration::from_millis(500) < stuck_done,
        "the good repository waited for the hanging one ({good_done:?} vs {stuck_done:?})"
    );
    let start = Instant::now();
    let err = w.probe(key(&hanging), Credentials::None).await.unwrap_err();
    assert_eq!(err.reason(), "GitTimeout", "{err}");
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn every_call_has_a_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let hanging = hanging_server();
    let o = WriterOptions {
        ask_timeout: Duration::from_millis(300),
        ..opts()
    };
    let w = Writer::new(dir.path().join("cache"), o);
    let start = Instant::now();
    let err = w.probe(key(&hanging), Credentials::None).await.unwrap_err();
    assert!(start.elapsed() < Duration::from_millis(1500));
    let GitError::Timeout { operation, .. } = &err else {
        panic!("expected Timeout, got {err:?}")
    };
    assert_eq!(operation, "probe");
}

#[tokio::test]
async fn a_failed_server_is_not_asked_again_during_the_cooldown() {
    let dir = tempfile::tempdir().unwrap();
    let hanging = hanging_server();
    let cooldown = Duration::from_secs(1);
    let o = WriterOptions {
        unreachable_cooldown: cooldown,
        ..opts()
    };
    let w = Writer::new(dir.path().join("cache"), o);
    let err = w.probe(key(&hanging), Credentials::None).await.unwrap_err();
    assert_eq!(err.reason(), "GitTimeout", "{err}");
    let fetches = w.stats().fetches.load(Ordering::Relaxed);
    let start = Instant::now();
    let err = w
        .submit(key(&hanging), Credentials::None, change("api", "1"))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "GitTimeout", "{err}");
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(w.stats().fetches.load(Ordering::Relaxed), fetches);
    tokio::time::sleep(cooldown).await;
    let start = Instant::now();
    let err = w.probe(key(&hanging), Credentials::None).await.unwrap_err();
    assert_eq!(err.reason(), "GitTimeout", "{err}");
    assert!(
        start.elapsed() >= Duration::from_millis(1900),
        "asked the server again"
    );
}

#[tokio::test]
async fn a_full_queue_answers_busy() {
    let dir = tempfile::tempdir().unwrap();
    let hanging = hanging_server();
    let o = WriterOptions {
        queue_capacity: 1,
        ..opts()
    };
    let w = Writer::new(dir.path().join("cache"), o);
    // The first change keeps the worker waiting for the server, the second fills the queue.
    let mut first = Box::pin(w.submit(key(&hanging), Credentials::None, change("a", "1")));
    assert!(futures::poll!(&mut first).is_pending());
    wait_until("the worker took the first change", || {
        w.stats().queue_depth() == 0
    })
    .await;
    let mut second = Box::pin(w.submit(key(&hanging), Credentials::None, change("b", "1")));
    assert!(futures::poll!(&mut second).is_pending());
    assert_eq!(w.stats().queue_depth(), 1);
    let err = w
        .submit(key(&hanging), Credentials::None, change("c", "1"))
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::Busy { .. }), "{err:?}");
    assert_eq!(err.reason(), "GitBusy");
    assert_eq!(
        w.stats().queue_depth(),
        1,
        "the refused change is not counted"
    );
    assert_eq!(first.await.unwrap_err().reason(), "GitTimeout");
    assert_eq!(second.await.unwrap_err().reason(), "GitTimeout");
    assert_eq!(w.stats().queue_depth(), 0);
}

#[tokio::test]
async fn idle_workers_stop_and_delete_their_cache() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote(dir.path());
    let cache = dir.path().join("cache");
    let o = WriterOptions {
        idle_timeout: Duration::from_millis(200),
        ..opts()
    };
    let w = Writer::new(cache.clone(), o);
    put(&w, &url, change("api", "1")).await;
    assert_eq!(w.workers(), 1);
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1);
    wait_until("the worker stopped and deleted its cache", || {
        w.workers() == 0 && std::fs::read_dir(&cache).unwrap().count() == 0
    })
    .await;
    let out = w
        .submit(key(&url), Credentials::None, change("api", "2"))
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Committed { .. }));
    assert_eq!(w.workers(), 1);
    assert_eq!(count(&url), 3);
}

#[tokio::test]
async fn jobs_racing_a_retiring_worker_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote(dir.path());
    let o = WriterOptions {
        idle_timeout: Duration::from_millis(1),
        ..opts()
    };
    let w = Writer::new(dir.path().join("cache"), o);
    for i in 0..12u64 {
        let out = w
            .submit(
                key(&url),
                Credentials::None,
                change(&format!("app{i}"), "1"),
            )
            .await
            .unwrap();
        assert!(matches!(out, Outcome::Committed { .. }));
        tokio::time::sleep(Duration::from_micros(400 * (i % 4))).await;
    }
    assert_eq!(count(&url), 13);
}

#[tokio::test]
async fn a_cache_full_of_loose_objects_is_cloned_again() {
    let dir = tempfile::tempdir().unwrap();
    let url = remote(dir.path());
    let o = WriterOptions {
        max_loose_objects: 5,
        ..opts()
    };
    let w = Writer::new(dir.path().join("cache"), o);
    for app in ["api", "web", "db", "cron"] {
        let out = w
            .submit(key(&url), Credentials::None, change(app, "1"))
            .await
            .unwrap();
        assert!(matches!(out, Outcome::Committed { .. }));
    }
    let again = w
        .submit(key(&url), Credentials::None, change("api", "1"))
        .await
        .unwrap();
    assert!(matches!(again, Outcome::Unchanged { .. }), "{again:?}");
    assert!(w.stats().compactions.load(Ordering::Relaxed) >= 3);
    assert_eq!(w.stats().reclones.load(Ordering::Relaxed), 0);
    assert!(
        w.stats()
            .counters()
            .contains(&("compact", w.stats().compactions.load(Ordering::Relaxed)))
    );
    assert_eq!(count(&url), 5);
    assert!(read(&url, "envs/staging/cron/deployment-cron.yaml").is_some());
}
