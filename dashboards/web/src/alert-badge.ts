// The header's alert badge, inside the navigation's "Alerts" link: the number of firing alerts
// the key sees, red while there are any, with its meaning in words for screen readers (the link
// reads "Alerts, 2 firing").

import type { AlertCounts, AlertHub } from "./alert-hub";
import { h, replace } from "./dom";
import { formatCount } from "./format";

/** Keeps `el` (the header's `#alert-badge`) showing the firing count of `hub`. */
export function showAlertBadge(el: HTMLElement, hub: AlertHub): void {
  hub.onCounts((counts: AlertCounts) => {
    el.hidden = false;
    el.dataset.firing = String(counts.firing);
    el.classList.toggle("badge-zero", counts.firing === 0);
    el.title = `${counts.firing} firing, ${counts.pending} pending`;
    replace(el, formatCount(counts.firing), h("span", { class: "visually-hidden" }, " firing"));
  });
}
