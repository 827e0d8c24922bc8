// An edge node on Eclipse Tahu's sparkplug-client (npm), scripted for citytel's Sparkplug B
// interop test. Usage: node edge.js SERVER_URL GROUP EDGE_NODE. It connects (the client sets
// its NDEATH Will and subscribes to its NCMD and DCMD topics), publishes NBIRTH and the DBIRTH
// of device "meter" when the client says so, and then reads one JSON command per line:
//   {"op": "ndata", "ts": T, "temperature_c": V}   NDATA
//   {"op": "ddata", "device": D, "ts": T, "power_w": V}   DDATA (of a device never born too)
//   {"op": "ddeath", "device": D, "ts": T}   DDEATH
//   {"op": "kill"}   exits at once: the connection drops and the broker fires the Will
// answering each with "ok". It prints "births" after each set of births and "ncmd {json}" for
// each node command; a Node Control/Rebirth command is answered with new births.
"use strict";
const readline = require("readline");
const sparkplug = require("sparkplug-client");

const [serverUrl, groupId, edgeNode] = process.argv.slice(2);
const client = sparkplug.newClient({
  serverUrl,
  username: "",
  password: "",
  groupId,
  edgeNode,
  clientId: edgeNode,
  version: "spBv1.0",
  publishDeath: true,
  keepalive: 30,
});

function births() {
  const ts = Date.now();
  client.publishNodeBirth({
    timestamp: ts,
    metrics: [
      { name: "Node Control/Rebirth", type: "Boolean", value: false },
      { name: "temperature_c", type: "Double", value: 21.5, timestamp: ts },
      { name: "firmware", type: "String", value: "tahu-3.2.4", timestamp: ts },
    ],
  });
  client.publishDeviceBirth("meter", {
    timestamp: ts,
    metrics: [{ name: "power_w", type: "Double", value: 100.0, timestamp: ts }],
  });
  console.log("births");
}

client.on("birth", births);
client.on("ncmd", (payload) => {
  console.log("ncmd " + JSON.stringify(payload));
  const rebirth = (payload.metrics || []).some(
    (m) => m.name === "Node Control/Rebirth" && m.value === true,
  );
  if (rebirth) births();
});
client.on("error", (e) => {
  console.error("sparkplug-client error: " + e);
  process.exit(2);
});

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const c = JSON.parse(line);
  switch (c.op) {
    case "ndata":
      client.publishNodeData({
        timestamp: c.ts,
        metrics: [{ name: "temperature_c", type: "Double", value: c.temperature_c, timestamp: c.ts }],
      });
      break;
    case "ddata":
      client.publishDeviceData(c.device, {
        timestamp: c.ts,
        metrics: [{ name: "power_w", type: "Double", value: c.power_w, timestamp: c.ts }],
      });
      break;
    case "ddeath":
      client.publishDeviceDeath(c.device, { timestamp: c.ts, metrics: [] });
      break;
    case "kill":
      process.exit(0);
      break;
    default:
      console.error("unknown command " + line);
      process.exit(2);
  }
  console.log("ok");
});
