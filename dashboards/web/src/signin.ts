// The sign-in page: one field for an API key. The key is checked with `SessionService.WhoAmI`
// before it is kept; a refused key is said so next to the field, and the reason a previous
// session ended (signed out, revoked, expired) is shown above it.

import { createClients, describeError, isUnauthenticated } from "./api";
import { h, replace } from "./dom";
import { whoAmI, type Session } from "./session";

/** Shows the sign-in page in `main`; calls `onSignedIn` with a key that works and its
 * session. `notice` says why it is shown (a session that ended), if it is worth saying. */
export function signInPage(
  main: HTMLElement,
  notice: string | undefined,
  onSignedIn: (key: string, session: Session) => void,
): void {
  document.title = "Sign in · citytel";
  const input = h("input", {
    id: "signin-key",
    name: "key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": "signin-help",
  });
  const error = h("p", { id: "signin-error", class: "signin-error", role: "alert" });
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { id: "signin", class: "signin", "aria-labelledby": "signin-h" },
    h("label", { for: "signin-key" }, "API key"),
    input,
    h(
      "p",
      { id: "signin-help", class: "hint" },
      "A key looks like citytel_<id>_<secret>. Ask your citytel administrator for one " +
        "(citytel keys create). It is kept in this tab only, until you sign out or close it.",
    ),
    error,
    button,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const key = input.value.trim();
    if (key === "") return;
    button.disabled = true;
    replace(error, "Checking the key…");
    whoAmI(createClients(key).session)
      .then((session) => onSignedIn(key, session))
      .catch((err: unknown) => {
        button.disabled = false;
        replace(
          error,
          isUnauthenticated(err) ? "This key does not work: " : "Cannot sign in: ",
          describeError(err),
        );
        input.focus();
      });
  });
  const page = h(
    "div",
    { class: "page signin-page" },
    h("h1", { id: "signin-h", tabindex: -1 }, "Sign in"),
    notice ? h("p", { id: "signin-notice", class: "notice" }, notice) : null,
    form,
  );
  main.replaceChildren(page);
  input.focus();
}
