// The active silences (ListSilences): their matchers, until when, who made them and why, with an
// Expire button (ExpireSilence), disabled for keys whose role may not (the page says why).

import { actionButton } from "./alert-actions";
import { describeError, isCancel } from "./api";
import { append, h, replace, table } from "./dom";
import { agoElement, ms, timeElement } from "./format";
import { MatchOperator, type Silence } from "./gen/citytel/v1/alerts_pb";
import type { AppContext } from "./router";

const OPERATORS = new Map<MatchOperator, string>([
  [MatchOperator.EQUAL, "="],
  [MatchOperator.NOT_EQUAL, "!="],
  [MatchOperator.REGEX, "=~"],
  [MatchOperator.NOT_REGEX, "!~"],
]);

/** The active silences. */
export class SilenceList {
  /** The element to put on the page. */
  readonly element: HTMLElement;
  private readonly body = h("div", {}, h("p", {}, "Loading…"));

  /** `noteId` is the id of the page's note on why the buttons may be disabled. */
  constructor(
    private readonly ctx: AppContext,
    private readonly signal: AbortSignal,
    private readonly noteId: string,
  ) {
    this.element = this.body;
  }

  /** Loads and shows them. */
  async load(): Promise<void> {
    try {
      const answer = await this.ctx.alerts.listSilences({}, { signal: this.signal });
      this.ctx.banner.clear("Silences");
      this.render(answer.silences.filter((s) => s.active));
    } catch (err) {
      if (isCancel(err)) return;
      const message = describeError(err);
      this.ctx.banner.show("Silences", message);
      replace(this.body, h("p", { class: "error-text" }, `Not available: ${message}`));
    }
  }

  private render(silences: Silence[]): void {
    if (silences.length === 0) {
      replace(this.body, h("p", { class: "muted" }, "No silence is in force."));
      return;
    }
    const { wrap, body } = table(
      "Active silences",
      ["Matchers", "Ends", "Created by", "Comment", "Actions"],
      { captionHidden: true },
    );
    for (const s of silences) {
      const matchers = s.matchers
        .map((m) => `${m.name}${OPERATORS.get(m.op) ?? "="}"${m.value}"`)
        .join(", ");
      const expire = actionButton(
        this.ctx,
        "Expire",
        "expire",
        this.noteId,
        (button) => void this.expire(s, button),
        `Expire the silence ${matchers}`,
      );
      append(
        body,
        h(
          "tr",
          { "data-silence": String(s.id) },
          h("th", { scope: "row", class: "wrap" }, h("code", {}, matchers)),
          h("td", {}, timeElement(ms(s.endsUnixMs))),
          h("td", {}, s.createdBy, " ", agoElement(ms(s.createdUnixMs))),
          h("td", { class: "wrap" }, s.comment || "–"),
          h("td", {}, h("div", { class: "actions" }, expire)),
        ),
      );
    }
    replace(this.body, wrap);
  }

  private async expire(s: Silence, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    try {
      await this.ctx.alerts.expireSilence({ id: s.id });
      this.ctx.banner.clear("Expire");
    } catch (err) {
      this.ctx.banner.show("Expire", `silence ${s.id}: ${describeError(err)}`);
      button.disabled = false;
    }
    this.ctx.alertEvents.refresh();
    await this.load();
  }
}
