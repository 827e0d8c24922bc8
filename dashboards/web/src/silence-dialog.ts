// The dialog that silences an alert: matchers from the alert's labels (each one a checkbox, all
// checked, so by default the silence covers exactly this alert), a duration and a comment. It
// calls CreateSilence and shows citytel's refusal (a scoped key must keep the `device` label, a
// missing operator role, ...) inside the dialog.

import { describeError } from "./api";
import { append, h } from "./dom";
import { DAY, formatDateTime, HOUR } from "./format";
import { MatchOperator, type Alert } from "./gen/citytel/v1/alerts_pb";
import type { AppContext } from "./router";

/** The durations offered, the first one chosen. */
const DURATIONS: [number, string][] = [
  [HOUR, "1 hour"],
  [4 * HOUR, "4 hours"],
  [12 * HOUR, "12 hours"],
  [DAY, "1 day"],
  [3 * DAY, "3 days"],
  [7 * DAY, "7 days"],
];

/** Opens the dialog for `alert` over the page; `created` runs once citytel took the silence. */
export function openSilenceDialog(
  ctx: AppContext,
  alert: Alert,
  createdBy: string,
  created: () => void,
): void {
  const labels = Object.entries(alert.labels).sort(([a], [b]) => a.localeCompare(b));
  const boxes = labels.map(([name, value], i) => ({
    name,
    value,
    input: h("input", { type: "checkbox", id: `silence-label-${i}`, checked: true }),
  }));
  const duration = h(
    "select",
    { id: "silence-duration" },
    DURATIONS.map(([span, label], i) => h("option", { value: span, selected: i === 0 }, label)),
  );
  const comment = h("input", {
    id: "silence-comment",
    type: "text",
    maxlength: 1000,
    autocomplete: "off",
  });
  const error = h("p", { class: "error-text", id: "silence-error", role: "alert" });
  const submit = h("button", { type: "submit", id: "silence-create" }, "Silence");
  const cancel = h("button", { type: "button" }, "Cancel");
  const form = h(
    "form",
    { method: "dialog", class: "silence-form" },
    h("h2", { id: "silence-h" }, `Silence ${alert.rule} on ${alert.target}`),
    h(
      "p",
      { class: "muted" },
      "No notification goes out for the alerts whose labels match every checked one while the " +
        "silence lasts; they still show here.",
    ),
    h(
      "fieldset",
      { class: "matchers" },
      h("legend", {}, "Match these labels"),
      boxes.map((b) =>
        h(
          "div",
          {},
          b.input,
          " ",
          h("label", { for: b.input.id }, h("code", {}, `${b.name}="${b.value}"`)),
        ),
      ),
    ),
    h("div", { class: "field" }, h("label", { for: duration.id }, "For"), duration),
    h("div", { class: "field" }, h("label", { for: comment.id }, "Comment (why)"), comment),
    error,
    h("div", { class: "dialog-buttons" }, submit, cancel),
  );
  const dialog = h(
    "dialog",
    { class: "silence-dialog", "aria-labelledby": "silence-h", id: "silence-dialog" },
    form,
  );
  append(document.body, dialog);
  dialog.addEventListener("close", () => dialog.remove());
  cancel.addEventListener("click", () => dialog.close());

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const matchers = boxes
      .filter((b) => b.input.checked)
      .map((b) => ({ name: b.name, value: b.value, op: MatchOperator.EQUAL }));
    if (matchers.length === 0) {
      error.textContent = "Check at least one label: a silence needs a matcher.";
      return;
    }
    const ends = Date.now() + Number(duration.value);
    submit.disabled = true;
    error.textContent = "";
    ctx.alerts
      .createSilence({
        matchers,
        startsUnixMs: 0n,
        endsUnixMs: BigInt(ends),
        comment: comment.value.trim(),
        createdBy,
      })
      .then(
        () => {
          dialog.close();
          created();
        },
        (err: unknown) => {
          submit.disabled = false;
          error.textContent = `Not silenced (until ${formatDateTime(ends)}): ${describeError(err)}`;
        },
      );
  });
  dialog.showModal();
}
