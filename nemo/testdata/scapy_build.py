#!/usr/bin/python3
"""Build Mobile IPv6 packets with scapy, as an encoder independent of nemo.

Run by scapy_test.go with Debian's /usr/bin/python3 (python3-scapy 2.5).
Prints one JSON list; each element is a packet:

  name                 what the packet is
  hex                  the whole IPv6 packet, as scapy serialised it
  set                  every field value this script chose, for the Go test
                       to compare with what nemo decodes
  in6_chksum           scapy.layers.inet6.in6_chksum over the Mobility Header
                       (checksum field zeroed) with the layers as built here
  in6_chksum_reparsed  the same on IPv6(hex) parsed back by scapy

The two checksums differ on every packet with a Home Address option:
scapy 2.5 puts the home address into the pseudo-header only when the HAO is
the sole option object of its header, and a parsed-back header holds PadN
and HAO (mip6-wire.md section 2.1; "padn_hao" below shows it when building).
"""

import hashlib
import hmac
import json
import sys

from scapy.compat import raw
from scapy.layers.inet6 import (
    HAO, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrRouting, PadN, in6_chksum,
    MIP6MH_BA, MIP6MH_BE, MIP6MH_BRR, MIP6MH_BU, MIP6OptAltCoA,
    MIP6OptBindingAuthData, MIP6OptBRAdvice, MIP6OptLLAddr, MIP6OptMNID,
    MIP6OptMobNetPrefix, MIP6OptMsgAuth, MIP6OptNonceIndices,
    MIP6OptReplayProtection, _MobilityHeader,
)

# Keep in step with independent_helpers_test.go.
HOA = "2001:db8:1::100"
COA = "2001:db8:99::5"
HA = "2001:db8:1::1"
CN = "2001:db8:c::9"
MNP1 = ("2001:db8:100::", 56)
MNP2 = ("2001:db8:200:80::", 57)
MNHA_KEY = b"0123456789abcdef"
NAI = b"mr7@fleet.example"
# 2025-03-14T15:09:26.5Z in NTP format: seconds since 1900, binary fraction.
UNIX = 1741964966
NTP = ((UNIX + 2208988800) << 32) | (1 << 31)
SPI = 0x1234


def mh_layer(pkt):
    layer = pkt
    while layer is not None and not isinstance(layer, _MobilityHeader):
        layer = layer.payload if layer.payload else None
    return layer


def mh_bytes(pkt):
    """The Mobility Header octets of the serialised packet."""
    whole = raw(pkt)
    return whole[len(whole) - len(raw(mh_layer(pkt))):]


def scapy_sum(pkt):
    """in6_chksum over the MH of pkt as scapy's own layers see it."""
    mh = bytearray(mh_bytes(pkt))
    mh[4:6] = b"\x00\x00"
    return in6_chksum(135, mh_layer(pkt), bytes(mh))


def find_option(mh, wanted):
    """Offset of the first option of type wanted, walking the TLVs from the
    end of the 12-octet BU fixed part."""
    off = 12
    while off < len(mh):
        if mh[off] == 0:
            off += 1
            continue
        if mh[off] == wanted:
            return off
        off += 2 + mh[off + 1]
    raise ValueError("option %d not found" % wanted)


def sign_mnha(pkt, coa, hoa):
    """RFC 4285 section 5.1: First(96, HMAC-SHA1(key, CoA | HoA | MH data)),
    MH data running from Payload Proto through the SPI with the checksum
    zeroed. The MH is serialised once with a placeholder to find the offsets
    (the authenticator's length does not change them)."""
    mh = bytearray(mh_bytes(pkt))
    off = find_option(mh, 9)
    mh[4:6] = b"\x00\x00"
    addrs = raw(IPv6(src=coa, dst=hoa))[8:40]
    mac = hmac.new(MNHA_KEY, addrs + bytes(mh[:off + 7]), hashlib.sha1).digest()[:12]
    # "/" copied the layers, so the option to fill is the one inside pkt.
    auth = [o for o in mh_layer(pkt).options if isinstance(o, MIP6OptMsgAuth)]
    auth[0].authdata = mac
    if mh_bytes(pkt)[off + 7:off + 19] != mac:
        raise AssertionError("authenticator not in the serialised packet")
    return mac


def entry(name, pkt, setv):
    return {
        "name": name,
        "hex": raw(pkt).hex(),
        "set": setv,
        "in6_chksum": scapy_sum(pkt),
        "in6_chksum_reparsed": scapy_sum(IPv6(raw(pkt))),
    }


def home_bu():
    # scapy names only A H L K M R P; F (0x0100, RFC 5555) and O (0x0040,
    # RFC 5648) go into its 9 "reserved" bits.
    bu = MIP6MH_BU(
        seq=4711, flags="AHR", reserved=0x140, mhtime=150,
        options=[
            MIP6OptAltCoA(acoa=COA),
            MIP6OptMobNetPrefix(plen=MNP1[1], prefix=MNP1[0]),
            MIP6OptMobNetPrefix(plen=MNP2[1], prefix=MNP2[0]),
            MIP6OptMNID(subtype=1, id=NAI),
            MIP6OptReplayProtection(timestamp=NTP),
            MIP6OptMsgAuth(subtype=1, mspi=SPI, authdata=b"\x00" * 12),
        ])
    # The HAO alone in the options list: scapy pads it to 8n+6 on output
    # and its pseudo-header helper then uses the home address.
    pkt = IPv6(src=COA, dst=HA) / IPv6ExtHdrDestOpt(nh=135, options=[HAO(hoa=HOA)]) / bu
    mac = sign_mnha(pkt, COA, HOA)
    return entry("home_bu", pkt, {
        "type": 5, "src": COA, "dst": HA, "hao": HOA,
        "seq": 4711, "flags": ["A", "H", "R"], "reserved": 0x140, "lifetime": 150,
        "altcoa": COA, "mnps": ["%s/%d" % MNP1, "%s/%d" % MNP2],
        "mnid_subtype": 1, "mnid": NAI.decode(), "timestamp": NTP,
        "auth_subtype": 1, "spi": SPI, "auth": mac.hex(),
        "mnha_key": MNHA_KEY.decode(),
    })


def cn_bu():
    """Return-routability BU to a correspondent node, with the options only
    a CN sees and one option nemo does not know (7, MH link-layer address).
    scapy 2.5's default lengths do not match what it writes for three of
    them: Nonce Indices 16 (writes 4), Binding Authorization Data 16
    (writes 12), link-layer address 7 (writes 8: code, pad, MAC), so the
    lengths are given."""
    bad = bytes(range(0xa0, 0xac))
    bu = MIP6MH_BU(
        seq=9, flags="A", mhtime=105,
        options=[
            MIP6OptNonceIndices(olen=4, hni=0x1111, coni=0x2222),
            MIP6OptLLAddr(olen=8, ocode=2, lla="02:00:5e:10:20:30"),
            MIP6OptBindingAuthData(olen=12, authenticator=int.from_bytes(bad, "big")),
        ])
    pkt = IPv6(src=COA, dst=CN) / IPv6ExtHdrDestOpt(nh=135, options=[HAO(hoa=HOA)]) / bu
    return entry("cn_bu", pkt, {
        "type": 5, "src": COA, "dst": CN, "hao": HOA,
        "seq": 9, "flags": ["A"], "reserved": 0, "lifetime": 105,
        "home_nonce": 0x1111, "careof_nonce": 0x2222, "bad": bad.hex(),
        "unknown": [{"type": 7, "data": bytes([2, 0, 0x02, 0x00, 0x5e, 0x10, 0x20, 0x30]).hex()}],
    })


def ba():
    msg = MIP6MH_BA(status=1, flags="KR", seq=4711, mhtime=120,
                    options=[MIP6OptBRAdvice(rinter=90)])
    pkt = (IPv6(src=HA, dst=COA) /
           IPv6ExtHdrRouting(nh=135, type=2, addresses=[HOA]) / msg)
    return entry("ba", pkt, {
        "type": 6, "src": HA, "dst": COA, "rh2": HOA,
        "status": 1, "flags": ["K", "R"], "seq": 4711, "lifetime": 120,
        "refresh": 90,
    })


def ba_rh2_processed():
    """A BA whose type 2 routing header was already processed (addresses
    swapped, Segments Left 0), as RFC 6275 section 6.4 never sends it
    ("Segments Left MUST be 1"). scapy follows RFC 8200 section 8.1: no
    segments left, so the pseudo-header destination is the IPv6 one."""
    msg = MIP6MH_BA(status=0, flags="K", seq=5, mhtime=150)
    pkt = (IPv6(src=HA, dst=HOA) /
           IPv6ExtHdrRouting(nh=135, type=2, segleft=0, addresses=[COA]) / msg)
    return entry("rh2_segleft0", pkt, {
        "type": 6, "src": HA, "dst": HOA, "rh2": COA,
        "status": 0, "flags": ["K"], "seq": 5, "lifetime": 150,
    })


def brr():
    pkt = IPv6(src=HA, dst=HOA) / MIP6MH_BRR()
    return entry("brr", pkt, {"type": 0, "src": HA, "dst": HOA})


def be(status):
    pkt = IPv6(src=HA, dst=COA) / MIP6MH_BE(status=status, ha=HOA)
    return entry("be%d" % status, pkt, {
        "type": 7, "src": HA, "dst": COA, "status": status, "home": HOA,
    })


def bare_hao(explicit_padn):
    """A BU with no mobility options behind a Destination Options header
    holding only the HAO. With explicit_padn the PadN that puts the HAO at
    8n+6 is written into the options list instead of left to autopad: the
    octets are the same, but scapy 2.5 then computes the checksum with the
    care-of address (its helper only honours a lone HAO)."""
    opts = [HAO(hoa=HOA)]
    if explicit_padn:
        opts = [PadN(optdata=b"\x00\x00")] + opts
    bu = MIP6MH_BU(seq=1, flags="AH", mhtime=0)
    pkt = IPv6(src=COA, dst=HA) / IPv6ExtHdrDestOpt(nh=135, options=opts) / bu
    name = "padn_hao" if explicit_padn else "bare_hao"
    return entry(name, pkt, {
        "type": 5, "src": COA, "dst": HA, "hao": HOA,
        "seq": 1, "flags": ["A", "H"], "reserved": 0, "lifetime": 0,
    })


def main():
    pkts = [home_bu(), cn_bu(), ba(), ba_rh2_processed(), brr(), be(1), be(2),
            bare_hao(False), bare_hao(True)]
    json.dump(pkts, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
