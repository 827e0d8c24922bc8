// Rendering of fleet events (state changes and reboots) as list items, for the overview's feed
// of recent changes.

import { h } from "./dom";
import { formatClock, formatDateTime, ms } from "./format";
import type { FleetEvent } from "./gen/citytel/v1/fleet_pb";
import { href } from "./router";
import { stateBadge } from "./state";

/** One line about `event`: time, device, what happened. */
export function eventItem(event: FleetEvent): HTMLLIElement | undefined {
  const e = event.event;
  if (e.case === undefined) return undefined;
  const at = ms(e.value.atUnixMs);
  const time = h(
    "time",
    { datetime: new Date(at).toISOString(), title: formatDateTime(at) },
    formatClock(at),
  );
  const device = h("a", { href: href(["devices", e.value.deviceId]) }, e.value.deviceId);
  if (e.case === "transition") {
    return h(
      "li",
      { class: "event", "data-device": e.value.deviceId },
      time,
      " ",
      device,
      " ",
      stateBadge(e.value.from),
      h("span", { class: "arrow" }, " → "),
      stateBadge(e.value.to),
      e.value.cause ? h("span", { class: "cause" }, ` (${e.value.cause})`) : null,
    );
  }
  return h(
    "li",
    { class: "event", "data-device": e.value.deviceId },
    time,
    " ",
    device,
    h("span", { class: "reboot" }, " rebooted"),
  );
}
