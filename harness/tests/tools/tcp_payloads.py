#!/usr/bin/env python3
"""Record every TCP payload that arrives for a port, as the receiving host sees it.

Run inside a pod's network namespace (the external broker's): an AF_PACKET socket sees the
frames on the pod's interface before the kernel hands them to the listener. One JSON line
per segment, {"src": "<ip>:<port>", "hex": "<payload>"}, flushed as it comes; "ready" on
stdout once the socket is open. Stops when killed.

usage: tcp_payloads.py <port> <out.jsonl>
"""
import json
import socket
import struct
import sys

ETH_P_ALL = 0x0003
ETH_P_IP = b"\x08\x00"


def main() -> None:
    port, out_path = int(sys.argv[1]), sys.argv[2]
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(ETH_P_ALL))
    print("ready", flush=True)
    with open(out_path, "w", buffering=1) as out:
        while True:
            frame, address = sock.recvfrom(65535)
            if address[2] == socket.PACKET_OUTGOING or frame[12:14] != ETH_P_IP:
                continue
            ip = frame[14:]
            header = (ip[0] & 0x0F) * 4
            if ip[9] != socket.IPPROTO_TCP:
                continue
            tcp = ip[header:]
            source_port, destination_port = struct.unpack("!HH", tcp[:4])
            if destination_port != port:
                continue
            total = struct.unpack("!H", ip[2:4])[0]
            payload = ip[header + (tcp[12] >> 4) * 4 : total]
            if payload:
                source = f"{socket.inet_ntoa(ip[12:16])}:{source_port}"
                out.write(json.dumps({"src": source, "hex": payload.hex()}) + "\n")


if __name__ == "__main__":
    main()
