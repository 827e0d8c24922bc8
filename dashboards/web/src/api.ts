// The query service client. The dashboard is served from the same origin as citytel's gRPC-Web
// endpoint, so the transport needs no configuration and no CORS.

import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { QueryService } from "./gen/citytel/v1/query_pb";

/** A client of `citytel.v1.QueryService`. */
export type QueryClient = Client<typeof QueryService>;

/** A client talking gRPC-Web to the origin that served this page. */
export function createQueryClient(): QueryClient {
  return createClient(QueryService, createGrpcWebTransport({ baseUrl: location.origin }));
}

/** Whether `err` only says that the call was cancelled (the page went away). */
export function isCancel(err: unknown): boolean {
  return ConnectError.from(err).code === Code.Canceled;
}

/** A sentence about what went wrong with a call, for the error banner. */
export function describeError(err: unknown): string {
  const e = ConnectError.from(err);
  switch (e.code) {
    case Code.Unimplemented:
      return "this citytel version does not answer it yet (unimplemented)";
    case Code.Unavailable:
      return `citytel is not reachable (${e.rawMessage || "unavailable"})`;
    default: {
      const name = Code[e.code].replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
      return e.rawMessage ? `${name}: ${e.rawMessage}` : name;
    }
  }
}
