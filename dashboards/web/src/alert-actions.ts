// What an operator can do to an alert from the dashboard: acknowledge it (AckAlert) and silence
// it (CreateSilence, through the silence dialog), under a name kept for the tab. A key whose
// role may not (a viewer) sees the buttons disabled, with the reason next to them; citytel
// refuses such calls anyway.

import { describeError } from "./api";
import { h } from "./dom";
import type { Alert } from "./gen/citytel/v1/alerts_pb";
import type { AppContext } from "./router";
import { allows } from "./session";
import { openSilenceDialog } from "./silence-dialog";

const ACTOR = "citytel.actor";

/** The name recorded with acknowledgements and silences ("" for the key alone). */
export function actor(): string {
  return sessionStorage.getItem(ACTOR) ?? "";
}

/** Keeps `name` for the tab. */
export function setActor(name: string): void {
  if (name.trim()) sessionStorage.setItem(ACTOR, name.trim());
  else sessionStorage.removeItem(ACTOR);
}

/** Whether the signed-in key may acknowledge and silence. */
export function mayAct(ctx: AppContext): boolean {
  return allows(ctx.session, "operator");
}

/** Why the buttons are disabled, for a key that may not act. */
export function roleReason(ctx: AppContext): string {
  return (
    `This API key's role is ${ctx.session.role}: it sees alerts and silences, but ` +
    "acknowledging, silencing and expiring need an operator or admin key."
  );
}

/** The note saying why the buttons are disabled (none for a key that may act), with `id` for the
 * buttons' `aria-describedby`. */
export function roleNote(ctx: AppContext, id: string): HTMLElement | null {
  if (mayAct(ctx)) return null;
  return h("p", { class: "role-note", id }, roleReason(ctx));
}

/** An action button: disabled, described by `noteId`, for a key that may not act. */
export function actionButton(
  ctx: AppContext,
  label: string,
  cls: string,
  noteId: string,
  onClick: (button: HTMLButtonElement) => void,
  accessibleName: string,
): HTMLButtonElement {
  const allowed = mayAct(ctx);
  const button = h(
    "button",
    {
      type: "button",
      class: cls,
      "aria-label": accessibleName,
      disabled: !allowed,
      "aria-describedby": allowed ? null : noteId,
      title: allowed ? null : roleReason(ctx),
    },
    label,
  );
  if (allowed) button.addEventListener("click", () => onClick(button));
  return button;
}

/** Acknowledges `alert`; `done` runs after citytel answered (either way). */
export async function acknowledge(
  ctx: AppContext,
  alert: Alert,
  button: HTMLButtonElement,
  done: () => void,
): Promise<void> {
  const label = button.textContent;
  button.disabled = true;
  button.textContent = "Acknowledging…";
  try {
    await ctx.alerts.ackAlert({ id: alert.id, by: actor() });
    ctx.banner.clear("Acknowledge");
  } catch (err) {
    ctx.banner.show("Acknowledge", `alert ${alert.id} (${alert.rule}): ${describeError(err)}`);
    button.disabled = false;
    button.textContent = label;
  }
  ctx.alertEvents.refresh();
  done();
}

/** Opens the silence dialog for `alert`; `done` runs once a silence was created. */
export function silence(ctx: AppContext, alert: Alert, done: () => void): void {
  openSilenceDialog(ctx, alert, actor(), () => {
    ctx.alertEvents.refresh();
    done();
  });
}
