// A device's alerts on its page (ListAlerts filtered on the device): open ones with Acknowledge
// and Silence, and the recently resolved ones. Reloaded (coalesced, at most every 2 s) when an
// alert event about the device arrives on the app's WatchAlerts stream.

import { AlertTable } from "./alert-table";
import { describeError, isCancel } from "./api";
import { section } from "./dom";
import { Refresher } from "./refresh";
import type { AppContext } from "./router";

/** Resolved alerts shown besides the open ones. */
const LIMIT = 50;
const RELOAD_INTERVAL = 2_000;

/** The alerts of one device. */
export class DeviceAlerts {
  /** The section to put on the page. */
  readonly section: HTMLElement;
  private readonly table: AlertTable;
  private readonly abort = new AbortController();
  private readonly reload: Refresher;
  private readonly stops: (() => void)[];

  constructor(
    private readonly ctx: AppContext,
    private readonly device: string,
  ) {
    this.reload = new Refresher(() => this.load(), RELOAD_INTERVAL);
    this.table = new AlertTable(ctx, {
      id: "device-alerts",
      showTarget: false,
      compact: true,
      changed: () => this.reload.request(),
    });
    this.section = section("device-alerts", "Alerts", this.table.element);
    this.stops = [
      ctx.alertEvents.subscribe((event) => {
        const alert = event.alert;
        if (alert && (alert.target === device || alert.labels.device === device))
          this.reload.request();
      }),
      ctx.alertEvents.onResume(() => this.reload.request()),
    ];
    this.reload.request();
  }

  /** Stops loading and listening. */
  destroy(): void {
    this.abort.abort();
    this.reload.stop();
    for (const stop of this.stops) stop();
  }

  private async load(): Promise<void> {
    try {
      const answer = await this.ctx.alerts.listAlerts(
        { filter: { deviceId: this.device }, limit: LIMIT },
        { signal: this.abort.signal },
      );
      this.ctx.banner.clear("Device alerts");
      this.table.render(answer.alerts);
    } catch (err) {
      if (isCancel(err)) return;
      const message = describeError(err);
      this.ctx.banner.show("Device alerts", message);
      this.table.failed(message);
    }
  }
}
