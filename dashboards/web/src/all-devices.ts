// Every device the key sees, page by page (ListDevices): the city map's points and a district's
// device list. The API has no district filter, so a district's devices are picked here.

import type { QueryClient } from "./api";
import type { Device } from "./gen/citytel/v1/query_pb";

/** Largest page ListDevices gives. */
const PAGE = 10_000;

/** Every device the key sees, in id order. */
export async function allDevices(client: QueryClient, signal: AbortSignal): Promise<Device[]> {
  const devices: Device[] = [];
  let pageToken = "";
  do {
    const page = await client.listDevices({ pageSize: PAGE, pageToken }, { signal });
    devices.push(...page.devices);
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return devices;
}
