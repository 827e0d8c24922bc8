// Every device the key sees, or those of one district, page by page (ListDevices, whose filters
// and paging are the server's): the city map's points and a district's device list.

import type { QueryClient } from "./api";
import type { Device } from "./gen/citytel/v1/query_pb";

/** Largest page ListDevices gives. */
const PAGE = 10_000;

/** Every device the key sees (`district` given: only those in it), in id order. */
export async function allDevices(
  client: QueryClient,
  signal: AbortSignal,
  district = "",
  pageSize = PAGE,
): Promise<Device[]> {
  const devices: Device[] = [];
  let pageToken = "";
  do {
    const page = await client.listDevices({ pageSize, pageToken, district }, { signal });
    devices.push(...page.devices);
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return devices;
}
