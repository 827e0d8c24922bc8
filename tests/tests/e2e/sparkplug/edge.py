"""A Sparkplug B edge node (group "plant", node "edge1", device "pump") built on pysparkplug's
client, driven line by line from stdin so that a test chooses every seq, alias and timestamp.

Each input line is a JSON command; each is answered with "ok" once published. Rebirth requests
(NCMD) received are reported as lines "ncmd {json}", a host's STATE (after the "state" command)
as lines "state {json}" with the retain flag added. Usage: edge.py HOST PORT
"""

import json
import os
import sys
import threading

from pysparkplug import (
    Client,
    DataType,
    DBirth,
    DData,
    DDeath,
    Message,
    MessageType,
    Metric,
    NBirth,
    NData,
    NDeath,
    QoS,
    Topic,
)

GROUP, NODE, DEVICE = "plant", "edge1", "pump"
out_lock = threading.Lock()


def say(line):
    with out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def topic(kind, device=None):
    return Topic(message_type=kind, group_id=GROUP, edge_node_id=NODE, device_id=device)


def bd_seq_metric(bd_seq, ts):
    return Metric(timestamp=ts, name="bdSeq", datatype=DataType.INT64, value=bd_seq)


def node_metrics(ts, voltage):
    return (
        Metric(timestamp=ts, name="Node Control/Rebirth", datatype=DataType.BOOLEAN, value=False),
        Metric(timestamp=ts, name="Supply/Voltage", alias=1, datatype=DataType.DOUBLE, value=voltage),
        Metric(timestamp=ts, name="Firmware", alias=2, datatype=DataType.STRING, value="2.1"),
    )


def device_metrics(ts, rpm):
    return (
        Metric(timestamp=ts, name="rpm", alias=10, datatype=DataType.INT32, value=rpm),
        Metric(timestamp=ts, name="running", alias=11, datatype=DataType.BOOLEAN, value=True),
        Metric(timestamp=ts, name="mode", alias=12, datatype=DataType.STRING, value="auto"),
    )


def publish(client, message, include_dtypes=False):
    """Publishes a pysparkplug message and waits until the broker has it (QoS 1: its PUBACK), so
    that an "ok" means the message is at the broker."""
    info = client._client.publish(
        topic=str(message.topic),
        payload=message.payload.encode(include_dtypes=include_dtypes),
        qos=message.qos,
        retain=message.retain,
    )
    info.wait_for_publish(10)


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    client = None
    for line in sys.stdin:
        cmd = json.loads(line)
        op, ts = cmd["op"], cmd.get("ts", 0)
        if op == "connect":
            # The Will: NDEATH with this session's bdSeq, as pysparkplug's EdgeNode sets it.
            client = Client(client_id=cmd.get("client_id", "edge1"))
            will = NDeath(timestamp=ts, bd_seq_metric=bd_seq_metric(cmd["bd_seq"], ts))
            client.set_will(Message(topic=topic(MessageType.NDEATH), payload=will, qos=QoS.AT_LEAST_ONCE, retain=False))

            def on_cmd(_client, message):
                metrics = [
                    {"name": m.name, "value": m.value, "timestamp": m.timestamp}
                    for m in message.payload.metrics
                ]
                say("ncmd " + json.dumps({"timestamp": message.payload.timestamp, "metrics": metrics}))

            client.subscribe(topic(MessageType.NCMD), QoS.AT_MOST_ONCE, on_cmd)
            connected = threading.Event()
            client.connect(host, port=port, callback=lambda _c: connected.set())
            connected.wait(10)
        elif op == "nbirth":
            metrics = (*node_metrics(ts, cmd["voltage"]), bd_seq_metric(cmd["bd_seq"], ts))
            payload = NBirth(timestamp=ts, seq=cmd["seq"], metrics=metrics)
            publish(client, Message(topic=topic(MessageType.NBIRTH), payload=payload, qos=QoS.AT_LEAST_ONCE, retain=False), include_dtypes=True)
        elif op == "dbirth":
            payload = DBirth(timestamp=ts, seq=cmd["seq"], metrics=device_metrics(ts, cmd["rpm"]))
            publish(client, Message(topic=topic(MessageType.DBIRTH, DEVICE), payload=payload, qos=QoS.AT_LEAST_ONCE, retain=False), include_dtypes=True)
        elif op == "ddata":
            # By alias only, as data messages are meant to be.
            metric = Metric(
                timestamp=ts,
                name=None,
                alias=cmd.get("alias", 10),
                datatype=DataType.INT32,
                value=cmd["rpm"],
                is_historical=cmd.get("historical", False),
            )
            metrics = (metric,)
            if "mode" in cmd:
                # The device's String metric, changed.
                metrics += (Metric(timestamp=ts, name=None, alias=12, datatype=DataType.STRING, value=cmd["mode"]),)
            payload = DData(timestamp=cmd.get("sent", ts), seq=cmd["seq"], metrics=metrics)
            publish(client, Message(topic=topic(MessageType.DDATA, DEVICE), payload=payload, qos=QoS.AT_LEAST_ONCE, retain=False))
        elif op == "ndata":
            metric = Metric(timestamp=ts, name=None, alias=1, datatype=DataType.DOUBLE, value=cmd["voltage"])
            payload = NData(timestamp=ts, seq=cmd["seq"], metrics=(metric,))
            publish(client, Message(topic=topic(MessageType.NDATA), payload=payload, qos=QoS.AT_LEAST_ONCE, retain=False))
        elif op == "ddeath":
            payload = DDeath(timestamp=ts, seq=cmd["seq"])
            publish(client, Message(topic=topic(MessageType.DDEATH, DEVICE), payload=payload, qos=QoS.AT_LEAST_ONCE, retain=False))
        elif op == "ndeath":
            payload = NDeath(timestamp=ts, bd_seq_metric=bd_seq_metric(cmd["bd_seq"], ts))
            publish(client, Message(topic=topic(MessageType.NDEATH), payload=payload, qos=QoS.AT_LEAST_ONCE, retain=False))
        elif op == "state":
            # A host's STATE, through paho (pysparkplug's client reads only its own payloads).
            def on_state(_paho, _userdata, message):
                state = json.loads(message.payload)
                state["retain"] = bool(message.retain)
                say("state " + json.dumps(state))

            state_topic = "spBv1.0/STATE/" + cmd["host_id"]
            client._client.message_callback_add(state_topic, on_state)
            result, _mid = client._client.subscribe(state_topic, qos=1)
            if result != 0:
                raise RuntimeError(f"subscribe failed: {result}")
        elif op == "kill":
            # Gone without a DISCONNECT: the broker publishes the Will.
            os._exit(0)
        elif op == "disconnect":
            client.disconnect()
        else:
            raise ValueError(f"unknown op {op}")
        say("ok")


if __name__ == "__main__":
    main()
