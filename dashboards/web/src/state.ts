// Device states as people see them: a label, an icon and a colour class, so state is never told
// by colour alone. Also the per-state counting used by the overview.

import { h } from "./dom";
import { DeviceState, type StateCounts } from "./gen/citytel/v1/fleet_pb";

/** How a state is shown. */
export interface StateLook {
  /** CSS class suffix and URL parameter value, e.g. "offline". */
  key: string;
  /** Human label, e.g. "Offline". */
  label: string;
  /** A symbol that differs in shape per state (decorative; the label carries the meaning). */
  icon: string;
}

const LOOKS = new Map<DeviceState, StateLook>([
  [DeviceState.ONLINE, { key: "online", label: "Online", icon: "●" }],
  [DeviceState.LATE, { key: "late", label: "Late", icon: "◔" }],
  [DeviceState.OFFLINE, { key: "offline", label: "Offline", icon: "✕" }],
  [DeviceState.UNREACHABLE, { key: "unreachable", label: "Unreachable", icon: "⊘" }],
  [DeviceState.UNKNOWN, { key: "unknown", label: "Unknown", icon: "?" }],
]);

/** The states in the order they are listed: up, degrading, down, then the two that say nothing
 * about the device itself. */
export const STATES: DeviceState[] = [
  DeviceState.ONLINE,
  DeviceState.LATE,
  DeviceState.OFFLINE,
  DeviceState.UNREACHABLE,
  DeviceState.UNKNOWN,
];

/** How `state` is shown. */
export function stateLook(state: DeviceState): StateLook {
  return LOOKS.get(state) ?? { key: "unknown", label: "Unknown", icon: "?" };
}

/** The state whose key is `key` ("offline"), or undefined. */
export function stateByKey(key: string | null): DeviceState | undefined {
  return STATES.find((s) => stateLook(s).key === key);
}

/** A badge: icon and label, coloured by state. */
export function stateBadge(state: DeviceState): HTMLElement {
  const look = stateLook(state);
  return h(
    "span",
    { class: `state state-${look.key}` },
    h("span", { class: "state-icon", "aria-hidden": "true" }, look.icon),
    ` ${look.label}`,
  );
}

type CountField = "online" | "late" | "offline" | "unreachable" | "unknown";

function field(state: DeviceState): CountField | undefined {
  switch (state) {
    case DeviceState.ONLINE:
      return "online";
    case DeviceState.LATE:
      return "late";
    case DeviceState.OFFLINE:
      return "offline";
    case DeviceState.UNREACHABLE:
      return "unreachable";
    case DeviceState.UNKNOWN:
      return "unknown";
    default:
      return undefined;
  }
}

/** Devices in `state` according to `counts`. */
export function countOf(counts: StateCounts | undefined, state: DeviceState): number {
  const f = field(state);
  return counts && f ? counts[f] : 0;
}

/** Moves one device from `from` to `to` in `counts` (a device seen for the first time comes from
 * no state and adds to the total). */
export function moveCount(counts: StateCounts, from: DeviceState, to: DeviceState): void {
  const a = field(from);
  const b = field(to);
  if (a && counts[a] > 0) {
    counts[a] -= 1;
  } else {
    counts.total += 1;
  }
  if (b) counts[b] += 1;
}
