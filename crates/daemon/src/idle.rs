//! Gives the heap that requests freed back to the kernel once the API has been quiet for a
//! moment: glibc keeps freed memory in its arenas (one per worker thread), so a burst of
//! requests would otherwise leave the daemon's resident set at its high-water mark.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long the API must be quiet before the heap is trimmed.
const QUIET: Duration = Duration::from_secs(1);

/// Requests seen, and a wake-up for the trimmer.
#[derive(Default)]
pub struct Activity {
    requests: AtomicU64,
    wake: tokio::sync::Notify,
}

impl Activity {
    /// Counts a request's start or end and wakes the trimmer.
    fn bump(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.wake.notify_one();
    }
}

/// Middleware: marks the API busy at each request's start and end.
pub async fn track(
    axum::extract::State(activity): axum::extract::State<Arc<Activity>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    activity.bump();
    let response = next.run(request).await;
    activity.bump();
    response
}

/// Waits for activity, then for `QUIET` without any, then trims; forever. Sleeps while idle.
pub async fn trim_when_quiet(activity: Arc<Activity>) {
    loop {
        activity.wake.notified().await;
        loop {
            let before = activity.requests.load(Ordering::Relaxed);
            tokio::time::sleep(QUIET).await;
            if activity.requests.load(Ordering::Relaxed) == before {
                break;
            }
        }
        // SAFETY: malloc_trim only releases free memory of the allocator; it takes no pointer.
        unsafe { libc::malloc_trim(0) };
    }
}
