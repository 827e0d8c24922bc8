//! What `run` prints: a progress line on stderr every second and the final summary on stdout.

use std::time::Duration;

use citytel_firmware_sim::Progress;
use citytel_firmware_sim::report::Totals;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often the progress line is printed.
const PERIOD: Duration = Duration::from_secs(1);

/// Prints the fleet's progress to stderr once a second.
pub(crate) struct ProgressLine {
    progress: watch::Receiver<Progress>,
}

impl ProgressLine {
    /// A printer of the snapshots arriving on `progress`.
    pub(crate) fn new(progress: watch::Receiver<Progress>) -> Self {
        ProgressLine { progress }
    }

    /// Prints until `shutdown`.
    pub(crate) async fn run(self, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + PERIOD, PERIOD);
        let mut previous = Progress::default();
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {
                    let now = self.progress.borrow().clone();
                    eprintln!("{}", progress_line(&now, &previous));
                    previous = now;
                }
            }
        }
    }
}

/// One progress line; the rate is over the time since `previous`.
fn progress_line(now: &Progress, previous: &Progress) -> String {
    let seconds = now.elapsed.saturating_sub(previous.elapsed).as_secs_f64();
    let readings = now
        .readings_published
        .saturating_sub(previous.readings_published);
    let rate = if seconds > 0.0 {
        readings as f64 / seconds
    } else {
        0.0
    };
    format!(
        "[{:>6.1}s] connected {}/{}  messages {} published, {} acked  readings {} ({:.1}/s)  reconnects {}  errors {}",
        now.elapsed.as_secs_f64(),
        now.connected,
        now.connections,
        now.messages_published,
        now.messages_acked,
        now.readings_published,
        rate,
        now.reconnects,
        now.errors,
    )
}

/// The summary printed when the run ends.
pub(crate) fn summary(totals: &Totals) -> String {
    let elapsed =
        Duration::from_millis(u64::try_from(totals.elapsed.as_millis()).unwrap_or(u64::MAX));
    format!(
        "messages    {} published, {} acked\n\
         readings    {} published, {} acked\n\
         reconnects  {}\n\
         errors      {}\n\
         elapsed     {}\n\
         rate        {:.1} readings/s",
        totals.messages_published,
        totals.messages_acked,
        totals.readings_published,
        totals.readings_acked,
        totals.reconnects,
        totals.errors,
        humantime::format_duration(elapsed),
        totals.readings_per_second(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line_shows_counts_and_rate() {
        let previous = Progress {
            elapsed: Duration::from_secs(1),
            readings_published: 100,
            ..Progress::default()
        };
        let now = Progress {
            elapsed: Duration::from_secs(2),
            connections: 7,
            connected: 6,
            messages_published: 310,
            messages_acked: 300,
            readings_published: 300,
            readings_acked: 290,
            reconnects: 1,
            errors: 2,
        };
        assert_eq!(
            progress_line(&now, &previous),
            "[   2.0s] connected 6/7  messages 310 published, 300 acked  readings 300 (200.0/s)  \
             reconnects 1  errors 2"
        );
    }

    #[test]
    fn summary_lists_totals() {
        let totals = Totals {
            messages_published: 12,
            messages_acked: 12,
            readings_published: 10,
            readings_acked: 10,
            reconnects: 0,
            errors: 0,
            elapsed: Duration::from_micros(2_500_400),
        };
        let text = summary(&totals);
        assert!(
            text.contains("readings    10 published, 10 acked"),
            "{text}"
        );
        assert!(text.contains("elapsed     2s 500ms"), "{text}");
        assert!(text.contains("rate        4.0 readings/s"), "{text}");
    }
}
