// The app's one WatchAlerts stream and the number of firing alerts. Pages subscribe to the alert
// events (an alert went pending, fired, resolved, was cancelled or acknowledged) instead of
// polling; the header's badge listens to the count, which is reloaded with ListAlerts after
// events (coalesced, at most one call every 2 s) and whenever the stream (re)connects, since
// events may have been missed while it was down.

import { describeError, isCancel, type AlertClient } from "./api";
import type { Banner } from "./banner";
import { AlertState, type AlertEvent } from "./gen/citytel/v1/alerts_pb";
import { runStream } from "./live";
import { Refresher } from "./refresh";

/** At most one count reload per this many ms, however many events arrive. */
const COUNT_INTERVAL = 2_000;

/** Alerts the caller sees, by state. */
export interface AlertCounts {
  firing: number;
  pending: number;
}

/** The alert event stream and the firing count. */
export class AlertHub {
  private readonly listeners = new Set<(event: AlertEvent) => void>();
  private readonly countListeners = new Set<(counts: AlertCounts) => void>();
  private readonly resumeListeners = new Set<() => void>();
  private counts: AlertCounts | undefined;
  private wasLive = false;
  private missed = false;
  private refresher: Refresher | undefined;

  /** Opens the stream and keeps it (and the count) current until `signal` aborts. */
  start(client: AlertClient, banner: Banner, signal: AbortSignal): void {
    const source = "Alerts";
    this.refresher = new Refresher(async () => {
      try {
        // The counts cover every alert the caller sees, whatever the filter: ask for one row.
        const answer = await client.listAlerts(
          { filter: { states: [AlertState.FIRING] }, limit: 1 },
          { signal },
        );
        banner.clear(source);
        this.setCounts({ firing: answer.firing, pending: answer.pending });
      } catch (err) {
        if (isCancel(err)) return;
        banner.show(source, `the number of firing alerts: ${describeError(err)}`, false);
      }
    }, COUNT_INTERVAL);
    signal.addEventListener("abort", () => this.refresher?.stop());
    // At once, so the badge shows even while the stream cannot connect.
    this.refresher.request();
    void runStream(
      (options) => client.watchAlerts({}, options),
      (event) => this.dispatch(event),
      (status) => {
        if (status.kind === "live") {
          banner.clear("Alert updates");
          if (this.missed) for (const listener of this.resumeListeners) listener();
          this.wasLive = true;
          this.missed = false;
          this.refresher?.request();
        } else {
          if (this.wasLive) this.missed = true;
          if (status.kind === "retrying")
            banner.show("Alert updates", `${status.reason}; alerts may be out of date`, false);
        }
      },
      signal,
    );
  }

  /** Calls `listener` for every alert event; returns the unsubscribe function. */
  subscribe(listener: (event: AlertEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Calls `listener` with the counts now (once known) and on every change. */
  onCounts(listener: (counts: AlertCounts) => void): () => void {
    this.countListeners.add(listener);
    if (this.counts) listener(this.counts);
    return () => this.countListeners.delete(listener);
  }

  /** Calls `listener` when the stream is live again after an interruption (events may have been
   * missed, so what the page shows should be reloaded). */
  onResume(listener: () => void): () => void {
    this.resumeListeners.add(listener);
    return () => this.resumeListeners.delete(listener);
  }

  /** Asks for the counts again (after this page changed an alert, say). */
  refresh(): void {
    this.refresher?.request();
  }

  private dispatch(event: AlertEvent): void {
    for (const listener of this.listeners) listener(event);
    this.refresher?.request();
  }

  private setCounts(counts: AlertCounts): void {
    this.counts = counts;
    for (const listener of this.countListeners) listener(counts);
  }
}
