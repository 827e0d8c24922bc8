// Live updates over server-streaming calls. `runStream` keeps one stream open and reopens it with
// exponential backoff whenever it fails or ends; `EventHub` is the single WatchEvents stream of
// the whole app, which pages subscribe to (so the fleet is never polled).
//
// Streams are closed while the browser tab is hidden: over plain http a browser keeps at most six
// connections per host, shared by all tabs, and every open stream holds one. A tab coming back
// reopens its streams and reloads what it shows.

import type { CallOptions } from "@connectrpc/connect";
import { describeError, type QueryClient } from "./api";
import type { FleetEvent } from "./gen/citytel/v1/fleet_pb";

const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 30_000;
/** A stream that stayed open this long counts as healthy: the next failure retries quickly. */
const HEALTHY_MS = 10_000;
/** Events kept for the overview's "recent changes", newest first. */
const RECENT_EVENTS = 50;

/** The condition of a live stream. */
export type LiveStatus =
  | { kind: "connecting" }
  | { kind: "live" }
  | { kind: "paused" }
  | { kind: "retrying"; inMs: number; reason: string };

/** Opens the stream with the given call options (its abort signal and header callback). */
export type StreamOpener<T> = (options: CallOptions) => AsyncIterable<T>;

/** Keeps a stream open until `signal` aborts, reopening it with backoff, and closed while the
 * tab is hidden. */
export async function runStream<T>(
  open: StreamOpener<T>,
  onMessage: (message: T) => void,
  onStatus: (status: LiveStatus) => void,
  signal: AbortSignal,
): Promise<void> {
  let delay = FIRST_RETRY_MS;
  while (!signal.aborted) {
    if (document.hidden) {
      onStatus({ kind: "paused" });
      await visible(signal);
      continue;
    }
    onStatus({ kind: "connecting" });
    const started = Date.now();
    const call = new AbortController();
    const stop = () => call.abort();
    const hide = () => document.hidden && call.abort();
    signal.addEventListener("abort", stop);
    document.addEventListener("visibilitychange", hide);
    let reason = "the server closed the stream";
    try {
      const onHeader = (headers: Headers) => {
        // A trailers-only answer (an error) also arrives as headers, with a grpc-status.
        if (!headers.has("grpc-status")) onStatus({ kind: "live" });
      };
      for await (const message of open({ signal: call.signal, onHeader })) {
        delay = FIRST_RETRY_MS;
        onMessage(message);
      }
    } catch (err) {
      reason = describeError(err);
    } finally {
      signal.removeEventListener("abort", stop);
      document.removeEventListener("visibilitychange", hide);
    }
    if (signal.aborted) return;
    if (call.signal.aborted) continue; // hidden: pause without counting a failure
    if (Date.now() - started > HEALTHY_MS) delay = FIRST_RETRY_MS;
    const wait = Math.round(delay * (0.8 + Math.random() * 0.4));
    onStatus({ kind: "retrying", inMs: wait, reason });
    await sleep(wait, signal);
    delay = Math.min(delay * 2, MAX_RETRY_MS);
  }
}

/** Resolves once the tab is visible (or `signal` aborts). */
function visible(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (document.hidden && !signal.aborted) return;
      document.removeEventListener("visibilitychange", check);
      signal.removeEventListener("abort", check);
      resolve();
    };
    document.addEventListener("visibilitychange", check);
    signal.addEventListener("abort", check);
    check();
  });
}

function sleep(duration: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, duration);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}

/** The app's one WatchEvents stream: fans state changes and reboots out to the pages. */
export class EventHub {
  /** The latest events, newest first. */
  readonly recent: FleetEvent[] = [];
  private readonly listeners = new Set<(event: FleetEvent) => void>();
  private readonly statusListeners = new Set<(status: LiveStatus) => void>();
  private readonly resumeListeners = new Set<() => void>();
  private status: LiveStatus = { kind: "connecting" };
  private wasLive = false;
  private missed = false;

  /** Opens the stream and keeps it open until `signal` aborts. */
  start(client: QueryClient, signal: AbortSignal): void {
    void runStream(
      (options) => client.watchEvents({}, options),
      (event) => this.dispatch(event),
      (status) => this.setStatus(status),
      signal,
    );
  }

  /** Calls `listener` for every event; returns the unsubscribe function. */
  subscribe(listener: (event: FleetEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Calls `listener` with the stream's status now and on every change. */
  onStatus(listener: (status: LiveStatus) => void): () => void {
    this.statusListeners.add(listener);
    listener(this.status);
    return () => this.statusListeners.delete(listener);
  }

  /** Calls `listener` when the stream is live again after an interruption: events may have been
   * missed, so what the page shows should be reloaded. */
  onResume(listener: () => void): () => void {
    this.resumeListeners.add(listener);
    return () => this.resumeListeners.delete(listener);
  }

  private dispatch(event: FleetEvent): void {
    this.recent.unshift(event);
    this.recent.length = Math.min(this.recent.length, RECENT_EVENTS);
    for (const listener of this.listeners) listener(event);
  }

  private setStatus(status: LiveStatus): void {
    this.status = status;
    if (status.kind === "live") {
      if (this.missed) for (const listener of this.resumeListeners) listener();
      this.wasLive = true;
      this.missed = false;
    } else if (this.wasLive) {
      this.missed = true;
    }
    for (const listener of this.statusListeners) listener(status);
  }
}
