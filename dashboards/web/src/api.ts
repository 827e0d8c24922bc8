// The clients of the query, session, alert and report services. The dashboard is served from the same origin
// as citytel's gRPC-Web endpoint, so the transport needs no configuration and no CORS. Every
// call, server streams included, carries the signed-in API key as its bearer; a call refused as
// UNAUTHENTICATED (the key was revoked or expired) is reported once, so the app can send the
// person back to the sign-in page.

import {
  Code,
  ConnectError,
  createClient,
  type Client,
  type Interceptor,
  type StreamResponse,
} from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { AlertService } from "./gen/citytel/v1/alerts_pb";
import { QueryService } from "./gen/citytel/v1/query_pb";
import { ReportService } from "./gen/citytel/v1/report_pb";
import { SessionService } from "./gen/citytel/v1/session_pb";

/** A client of `citytel.v1.QueryService`. */
export type QueryClient = Client<typeof QueryService>;

/** A client of `citytel.v1.SessionService`. */
export type SessionClient = Client<typeof SessionService>;

/** A client of `citytel.v1.AlertService`. */
export type AlertClient = Client<typeof AlertService>;

/** A client of `citytel.v1.ReportService`. */
export type ReportClient = Client<typeof ReportService>;

/** The clients of one key. */
export interface Clients {
  query: QueryClient;
  session: SessionClient;
  alerts: AlertClient;
  reports: ReportClient;
}

/** Calls `onRefused` with the error of a call (or stream) refused as UNAUTHENTICATED. */
function watchRefusals(onRefused: (err: ConnectError) => void): Interceptor {
  const check = (err: unknown) => {
    const e = ConnectError.from(err);
    if (e.code === Code.Unauthenticated) onRefused(e);
  };
  async function* guarded<T>(messages: AsyncIterable<T>): AsyncIterable<T> {
    try {
      yield* messages;
    } catch (err) {
      check(err);
      throw err;
    }
  }
  return (next) => async (req) => {
    try {
      const res = await next(req);
      if (!res.stream) return res;
      return { ...res, message: guarded(res.message) } as StreamResponse;
    } catch (err) {
      check(err);
      throw err;
    }
  };
}

/** Clients talking gRPC-Web to the origin that served this page, with `key` as the bearer (none
 * when the service runs without authentication). `onRefused`, if given, hears of every call the
 * service refuses as UNAUTHENTICATED. */
export function createClients(
  key: string | undefined,
  onRefused?: (err: ConnectError) => void,
): Clients {
  const interceptors: Interceptor[] = [];
  if (key !== undefined) {
    interceptors.push((next) => (req) => {
      req.header.set("authorization", `Bearer ${key}`);
      return next(req);
    });
  }
  if (onRefused) interceptors.push(watchRefusals(onRefused));
  const transport = createGrpcWebTransport({ baseUrl: location.origin, interceptors });
  return {
    query: createClient(QueryService, transport),
    session: createClient(SessionService, transport),
    alerts: createClient(AlertService, transport),
    reports: createClient(ReportService, transport),
  };
}

/** Whether `err` only says that the call was cancelled (the page went away). */
export function isCancel(err: unknown): boolean {
  return ConnectError.from(err).code === Code.Canceled;
}

/** Whether `err` says that the call needs a (working) API key. */
export function isUnauthenticated(err: unknown): boolean {
  return ConnectError.from(err).code === Code.Unauthenticated;
}

/** A sentence about what went wrong with a call, for the error banner. */
export function describeError(err: unknown): string {
  const e = ConnectError.from(err);
  switch (e.code) {
    case Code.Unimplemented:
      return "this citytel version does not answer it yet (unimplemented)";
    case Code.Unavailable:
      return `citytel is not reachable (${e.rawMessage || "unavailable"})`;
    case Code.NotFound:
      return `not found, or not visible to this API key (${e.rawMessage || "not found"})`;
    case Code.PermissionDenied:
      return `this API key's role does not allow it (${e.rawMessage || "permission denied"})`;
    case Code.Unauthenticated:
      return `the API key no longer works (${e.rawMessage || "unauthenticated"})`;
    default: {
      const name = Code[e.code].replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
      return e.rawMessage ? `${name}: ${e.rawMessage}` : name;
    }
  }
}
