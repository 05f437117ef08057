#!/usr/bin/env python3
"""delaybox: a two-port Ethernet relay that delays one direction.

Why this exists: this kernel has no `tc netem` (no delaying qdisc at all) and
no nftables `queue` expression, so delay and jitter are made in user space.
The lab splices this relay into one node's link, inside the hub namespace:

    node eth0 <-veth-> NODE_PORT  [delaybox]  RELAY_PORT <-veth-> bridge

Frames the node sends (read on NODE_PORT) are written to RELAY_PORT after
delay +/- jitter ms (uniform, like netem's default, so jitter may reorder);
frames toward the node are passed through at once. Both sockets use
PACKET_VNET_HDR, so a frame keeps its checksum-offload and segmentation
metadata across the relay: nothing is recomputed or rewritten, and TCP and
UDP behave as on the plain link.

It stops by itself after --duration seconds (and on SIGTERM), releasing what
it still holds. Standard library only.
"""
import argparse
import heapq
import random
import select
import signal
import socket
import sys
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_VNET_HDR = 15
PACKET_OUTGOING = 4
MAX_FRAME = (1 << 16) + 64  # a GSO frame plus its virtio header


def port(ifname):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                      socket.htons(ETH_P_ALL))
    # Must be set before bind: frames then carry a virtio_net_hdr that tells
    # the kernel how to finish checksums/segmentation when we send them on.
    s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    s.bind((ifname, ETH_P_ALL))
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--node-port", required=True)
    ap.add_argument("--relay-port", required=True)
    ap.add_argument("--delay-ms", type=float, required=True)
    ap.add_argument("--jitter-ms", type=float, default=0.0)
    ap.add_argument("--duration", type=float, required=True,
                    help="seconds; the relay exits by itself after this")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    node = port(args.node_port)
    relay = port(args.relay_port)
    held = []  # heap of (due, tie, frame), frames from the node
    tie = 0
    end = time.monotonic() + args.duration
    while not stop[0]:
        now = time.monotonic()
        while held and held[0][0] <= now:
            relay.send(heapq.heappop(held)[2])
        if now >= end:
            break
        wait = min(end - now, 0.05)
        if held:
            wait = max(0.0, min(wait, held[0][0] - now))
        try:
            ready, _, _ = select.select([node, relay], [], [], wait)
        except InterruptedError:
            continue
        for s in ready:
            frame, addr = s.recvfrom(MAX_FRAME)
            # A packet socket also sees what we transmit on its port; those
            # copies come back as PACKET_OUTGOING and must not be relayed.
            if addr[2] == PACKET_OUTGOING:
                continue
            if s is relay:
                node.send(frame)
                continue
            d = args.delay_ms + rnd.uniform(-args.jitter_ms, args.jitter_ms)
            tie += 1
            heapq.heappush(held, (time.monotonic() + max(0.0, d) / 1000.0,
                                  tie, frame))
    while held:
        relay.send(heapq.heappop(held)[2])
    return 0


if __name__ == "__main__":
    sys.exit(main())
