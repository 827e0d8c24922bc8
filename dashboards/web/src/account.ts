// The header's account area: the signed-in organisation and role (and what the key sees), with
// a sign-out button; or, when citytel runs without authentication, "open, no key".

import { h, replace } from "./dom";
import { signOut, type Session } from "./session";

/** Shows `session` in `el` (the header's `#account`). */
export function showAccount(el: HTMLElement, session: Session): void {
  el.hidden = false;
  el.dataset.role = session.role;
  if (!session.authentication) {
    el.dataset.org = "";
    replace(
      el,
      h(
        "span",
        {
          class: "who",
          title: "citytel runs without API keys: everyone who reaches it is an admin",
        },
        "open, no key",
      ),
    );
    return;
  }
  el.dataset.org = session.organisation;
  const org = session.organisationName || session.organisation;
  const button = h("button", { id: "sign-out", type: "button" }, "Sign out");
  button.addEventListener("click", () => signOut("You signed out."));
  replace(
    el,
    h(
      "span",
      {
        class: "who",
        title: `key ${session.keyId}${session.keyName ? ` (${session.keyName})` : ""}`,
      },
      h("span", { class: "org" }, org),
      " · ",
      h("span", { class: "role" }, session.role),
      session.scope ? h("span", { class: "scope" }, ` · sees ${session.scope}`) : null,
    ),
    button,
  );
}
