// Who is signed in: the API key (kept in the tab's session storage, so it goes away with the tab
// and is never sent anywhere but to citytel) and what `SessionService.WhoAmI` says about it
// (organisation, role, scope). Signing out, or a key the service stops accepting, clears the key
// and reloads the page, which then shows the sign-in page with the reason.

import { type SessionClient } from "./api";
import type { Scope } from "./gen/citytel/v1/admin_pb";

const KEY = "citytel.apiKey";
const REASON = "citytel.signedOut";

/** The roles, each allowing what the ones before it allow. */
export const ROLES = ["viewer", "operator", "admin"] as const;
/** A role. */
export type Role = (typeof ROLES)[number];

/** What the dashboard knows about the signed-in key. */
export interface Session {
  /** Whether the service requires keys (false: everyone is an anonymous admin). */
  authentication: boolean;
  /** The organisation's id and display name. */
  organisation: string;
  organisationName: string;
  role: Role;
  /** The key's id and name. */
  keyId: string;
  keyName: string;
  /** What the key sees, in words ("" for everything). */
  scope: string;
}

/** The stored key, if any. */
export function storedKey(): string | undefined {
  return sessionStorage.getItem(KEY) ?? undefined;
}

/** Keeps `key` for this tab. */
export function storeKey(key: string): void {
  sessionStorage.setItem(KEY, key);
}

/** Forgets the key. */
export function forgetKey(): void {
  sessionStorage.removeItem(KEY);
}

/** Forgets the key and reloads the page, which shows the sign-in page, with `reason` if
 * given. */
export function signOut(reason?: string): void {
  forgetKey();
  if (reason) sessionStorage.setItem(REASON, reason);
  location.reload();
}

/** Why the last session ended, once (then forgotten). */
export function takeSignOutReason(): string | undefined {
  const reason = sessionStorage.getItem(REASON) ?? undefined;
  sessionStorage.removeItem(REASON);
  return reason;
}

function describeScope(scope: Scope | undefined): string {
  if (!scope) return "";
  const parts = [
    ["district", scope.districts],
    ["site", scope.sites],
    ["kind", scope.kinds],
    ["device", scope.devices],
  ]
    .filter(([, list]) => list.length > 0)
    .map(([name, list]) => `${name} ${(list as string[]).join(", ")}`);
  if (scope.restrictMetrics) parts.push(`metrics ${scope.metrics.join(", ") || "none"}`);
  return parts.join("; ");
}

function role(name: string): Role {
  return (ROLES as readonly string[]).includes(name) ? (name as Role) : "viewer";
}

/** Asks the service who the client's key is. Throws what the call throws (UNAUTHENTICATED for a
 * missing, revoked or expired key). */
export async function whoAmI(client: SessionClient): Promise<Session> {
  const answer = await client.whoAmI({});
  return {
    authentication: answer.authentication,
    organisation: answer.organisation?.id ?? "",
    organisationName: answer.organisation?.name ?? "",
    role: role(answer.role),
    keyId: answer.key?.id ?? "",
    keyName: answer.key?.name ?? "",
    scope: describeScope(answer.key?.scope),
  };
}

/** Whether `session` has at least `needed` (e.g. "operator" for maintenance windows). */
export function allows(session: Session, needed: Role): boolean {
  return ROLES.indexOf(session.role) >= ROLES.indexOf(needed);
}
