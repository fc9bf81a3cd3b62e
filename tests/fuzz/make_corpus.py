#!/usr/bin/env python3
# tests/fuzz/make_corpus.py: writes the committed seed corpora, tests/fuzz/corpus/TARGET/, a
# handful of small valid and edge inputs per target. Run it again after changing how a target
# reads its input; the files are deterministic (named after their content's purpose).
#
# The binary targets read their input with libFuzzer's FuzzedDataProvider: ConsumeBytes takes
# from the front, ConsumeIntegral*/ConsumeBool/PickValueInArray from the back (most significant
# byte last). Seed below mirrors that: it records the calls in the order a target makes them
# and lays the bytes out so the target reads back exactly these values.
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")


class Seed:
    def __init__(self):
        self.front = bytearray()
        self.back = []  # byte groups in consumption order

    def int(self, lo, hi, value):
        # One byte per 8 bits of the range, read most significant first from the end: laid out
        # least significant first.
        assert lo <= value <= hi, (lo, hi, value)
        n = 0
        while n < 8 and ((hi - lo) >> (8 * n)) > 0:
            n += 1
        self.back.append((value - lo).to_bytes(n, "little"))
        return self

    def bool(self, b):
        return self.int(0, 255, 1 if b else 0)

    def bytes(self, data):
        self.front += data
        return self

    def build(self):
        return bytes(self.front) + b"".join(reversed(self.back))


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def be32(v):
    return struct.pack(">I", v)


def eth(dst=b"\xff" * 6, src=b"\x52\x54\x00\x12\x34\x56", payload=b"\x08\x06" + b"\x00" * 46):
    return dst + src + payload


# ---- stream_framing_fuzz -------------------------------------------------------------------
MAIN_SIZES = [32, 100, 1024, 4096, 65536]


def stream_seed(main_size, chunks, reads, hold=0):
    """reads: list of byte strings, each one read (commit)."""
    s = Seed().int(0, 4, MAIN_SIZES.index(main_size)).int(1, 4, chunks)
    for r in reads:
        s.int(0, 70000, len(r)).int(1, 16, 16).int(0, 64, hold).int(0, 8, 0).bytes(r)
    return s.build()


def stream():
    f1, f2 = eth(), eth(src=b"\x52\x54\x00\x00\x00\x02", payload=b"\x08\x00" + b"\x45" * 80)
    wire = be32(len(f1)) + f1 + be32(len(f2)) + f2
    write("stream_framing_fuzz", "two_frames_one_read", stream_seed(4096, 2, [wire]))
    write("stream_framing_fuzz", "byte_by_byte", stream_seed(1024, 2, [wire[i:i + 1] for i in range(len(wire))]))
    write("stream_framing_fuzz", "split_prefix", stream_seed(1024, 2, [wire[:2], wire[2:7], wire[7:]]))
    big = eth(payload=b"\x08\x00" + bytes(range(256)) * 4)
    write("stream_framing_fuzz", "frame_past_main_part",
          stream_seed(32, 2, [(be32(len(f1)) + f1)[:20], (be32(len(f1)) + f1)[20:] + be32(len(big)), big]))
    write("stream_framing_fuzz", "frames_held_until_chunks_run_out",
          stream_seed(100, 1, [be32(len(f1)) + f1] * 6, hold=64))
    write("stream_framing_fuzz", "length_too_short", stream_seed(4096, 1, [be32(13) + b"\x00" * 13]))
    write("stream_framing_fuzz", "length_too_long", stream_seed(4096, 1, [be32(65550) + b"\x00" * 32]))
    write("stream_framing_fuzz", "min_and_max_length",
          stream_seed(100, 2, [be32(14) + b"\x01" * 14 + be32(65549)]))


# ---- datagram_rx_fuzz / vxlan_rx_fuzz --------------------------------------------------------
def dgram_seed(datagrams, chunks=1):
    s = Seed().int(1, 3, chunks)
    s.int(0, 1000, 10)
    for _ in range(3):
        s.int(0, 64, 0)
    s.int(1, 32, len(datagrams))
    for frm, d in datagrams:
        s.bool(frm)
        if len(d) <= 290:
            s.int(0, 300, len(d))
        else:
            s.int(0, 300, 300).int(0, 65549 + 64, len(d))
        s.bytes(d[:512])
    return s.build()


def datagrams():
    a, b = b"\x52\x54\x00\x00\x00\x0a", b"\x52\x54\x00\x00\x00\x0b"
    t = "datagram_rx_fuzz"
    write(t, "two_senders_learn_and_answer",
          dgram_seed([(0, eth(src=a)), (1, eth(dst=a, src=b)), (0, eth(dst=b, src=a))]))
    write(t, "runt_empty_and_min", dgram_seed([(0, b""), (0, b"\x01" * 13), (0, b"\x02" * 14)]))
    write(t, "oversize_cut_by_kernel", dgram_seed([(0, eth(src=a) + b"\x00" * 65500)]))
    write(t, "max_frame", dgram_seed([(1, eth(src=b) + b"\x00" * (65549 - 60))]))
    write(t, "multicast_source", dgram_seed([(0, eth(src=b"\x01\x00\x5e\x00\x00\x01"))]))


def vxlan_header(vni, flags=0x08):
    return bytes([flags, 0, 0, 0, (vni >> 16) & 0xFF, (vni >> 8) & 0xFF, vni & 0xFF, 0])


def vxlan_seed(vni, datagrams):
    s = Seed().int(0, 0xFFFFFF, vni)
    s.int(1, 32, len(datagrams))
    for remote, d in datagrams:
        s.int(0, 3, remote)
        if len(d) <= 290:
            s.int(0, 300, len(d))
        else:
            s.int(0, 300, 300).int(0, 8 + 65549 + 64, len(d))
        s.bytes(d[:512])
    return s.build()


def vxlan():
    t = "vxlan_rx_fuzz"
    f = eth(src=b"\x52\x54\x00\x00\x00\x0c")
    write(t, "good_frames", vxlan_seed(42, [(0, vxlan_header(42) + f), (2, vxlan_header(42) + eth())]))
    write(t, "wrong_vni_and_no_i_flag",
          vxlan_seed(42, [(1, vxlan_header(43) + f), (1, vxlan_header(42, flags=0) + f)]))
    write(t, "gbp_flags_ignored", vxlan_seed(7, [(0, vxlan_header(7, flags=0x88) + f)]))
    write(t, "runts", vxlan_seed(1, [(0, b""), (0, vxlan_header(1)[:5]), (0, vxlan_header(1) + b"\x00" * 13)]))
    write(t, "oversize", vxlan_seed(1, [(0, vxlan_header(1) + f + b"\x00" * 65500)]))
    write(t, "max_vni", vxlan_seed(0xFFFFFF, [(3, vxlan_header(0xFFFFFF) + f)]))


# ---- dhcp_server_fuzz ------------------------------------------------------------------------
def csum(data):
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack(">%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def dhcp_frame(msg_type, mac=b"\x52\x54\x00\x12\x34\x56", xid=0x1234ABCD, ciaddr=0, requested=None,
               server_id=None, max_size=None, broadcast=False, extra=b""):
    opts = bytes([53, 1, msg_type])
    if requested is not None:
        opts += bytes([50, 4]) + be32(requested)
    if server_id is not None:
        opts += bytes([54, 4]) + be32(server_id)
    if max_size is not None:
        opts += bytes([57, 2]) + struct.pack(">H", max_size)
    opts += bytes([55, 4, 1, 3, 6, 15]) + extra + b"\xff"
    bootp = bytearray(240)
    bootp[0:3] = b"\x01\x01\x06"
    bootp[4:8] = be32(xid)
    bootp[10:12] = struct.pack(">H", 0x8000 if broadcast else 0)
    bootp[12:16] = be32(ciaddr)
    bootp[28:34] = mac
    bootp[236:240] = b"\x63\x82\x53\x63"
    bootp = bytes(bootp) + opts
    if len(bootp) < 300:
        bootp += b"\x00" * (300 - len(bootp))
    udp = struct.pack(">HHHH", 68, 67, 8 + len(bootp), 0) + bootp
    ip = bytearray(struct.pack(">BBHHHBBH", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0))
    ip += be32(ciaddr) + be32(0xFFFFFFFF if ciaddr == 0 else 0x0A000202)
    ip[10:12] = struct.pack(">H", csum(bytes(ip)))
    return b"\xff" * 6 + mac + b"\x08\x00" + bytes(ip) + udp


def dhcp_seed(messages, tiny=False, max_leases=300, extras=0, pins=(), per_port=4, port=0):
    s = Seed().bool(tiny).int(1, 300, max_leases).int(0, 120, 60).int(0, 1200, 600).int(1, 86400, 86400)
    s.int(0, 255, extras)
    if extras & 2:
        s.int(1, 255, 8)
    if extras & 8:
        s.int(1, 127, 11)
    s.int(0, 3, len(pins))
    for last, host in pins:
        s.int(0, 255, last).int(4, 6, host)
    s.int(0, 4, per_port)
    for step, fix, frame in messages:
        s.int(0, 3, port).int(0, 2000, step).bool(True).int(0, 255, fix).int(0, 1600, len(frame))
        s.bytes(frame)
    return s.build()


def dhcp():
    t = "dhcp_server_fuzz"
    S = 0x0A000202
    write(t, "discover", dhcp_seed([(0, 0, dhcp_frame(1))]))
    write(t, "discover_request_release", dhcp_seed([
        (0, 0, dhcp_frame(1)),
        (1, 0, dhcp_frame(3, requested=0x0A00020F, server_id=S)),
        (10, 0, dhcp_frame(7, ciaddr=0x0A00020F, server_id=S))]))
    write(t, "renew_and_inform", dhcp_seed([
        (0, 0, dhcp_frame(3, requested=0x0A00020F)),
        (5, 0, dhcp_frame(3, ciaddr=0x0A00020F)),
        (5, 0, dhcp_frame(8, ciaddr=0x0A00020F, broadcast=True))], extras=0x3F))
    write(t, "decline_and_other_server", dhcp_seed([
        (0, 0, dhcp_frame(1)),
        (0, 0, dhcp_frame(4, requested=0x0A00020F, server_id=S)),
        (0, 0, dhcp_frame(3, requested=0x0A00020F, server_id=0x0A000909))]))
    write(t, "tiny_pool_exhausted", dhcp_seed(
        [(0, 0, dhcp_frame(1, mac=bytes([0x52, 0x54, 0, 0, 0, i]))) for i in range(2, 9, 2)],
        tiny=True, pins=[(0x20, 5)]))
    write(t, "one_port_many_macs", dhcp_seed(
        [(0, 0, dhcp_frame(1, mac=bytes([0x52, 0x54, 0, 1, 0, i]))) for i in range(2, 14, 2)],
        per_port=2, port=1))
    write(t, "max_size_and_fixups", dhcp_seed([
        (0, 7, dhcp_frame(1, max_size=1500, extra=bytes([12, 3]) + b"abc")),
        (0, 0, dhcp_frame(1, max_size=100))], extras=0x20))
    write(t, "truncated_options", dhcp_seed([(0, 0, dhcp_frame(1)[:290])]))
    # Option 12: a host name, a rename at reboot, a full name, trailing NULs, garbage, 255 bytes.
    write(t, "hostname_and_rename", dhcp_seed([
        (0, 0, dhcp_frame(1, extra=bytes([12, 4]) + b"web1")),
        (1, 0, dhcp_frame(3, requested=0x0A00020F, server_id=S, extra=bytes([12, 4]) + b"web1")),
        (5, 0, dhcp_frame(3, requested=0x0A00020F, extra=bytes([12, 17]) + b"web2.corp.example")),
        (5, 0, dhcp_frame(3, ciaddr=0x0A00020F, extra=bytes([12, 4]) + b"db\x00\x00"))]))
    write(t, "hostname_garbage", dhcp_seed([
        (0, 0, dhcp_frame(3, requested=0x0A00020F, extra=bytes([12, 6]) + b"-a b\xff\x00")),
        (0, 0, dhcp_frame(3, requested=0x0A00020F, extra=bytes([12, 255]) + b"x" * 255)),
        (0, 0, dhcp_frame(3, requested=0x0A00020F, extra=bytes([12, 0]))),
        (0, 0, dhcp_frame(3, mac=bytes([0x52, 0x54, 0, 0, 0, 2]), requested=0x0A000210,
                          extra=bytes([12, 4]) + b"web1"))]))


# ---- dns_responder_fuzz --------------------------------------------------------------------
def dns_name(name):
    out = b""
    for label in name.split(".") if name else []:
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def dns_query(name, qtype=1, qid=0xBEEF, flags=0x0100, qdcount=1, edns=None, qclass=1):
    """A query as a resolver sends it (RFC 1035 section 4.1); edns: the OPT's payload size."""
    q = struct.pack(">HHHHHH", qid, flags, qdcount, 0, 0, 1 if edns is not None else 0)
    q += dns_name(name) + struct.pack(">HH", qtype, qclass)
    if edns is not None:  # RFC 6891 section 6.1.2: root, OPT, size, rcode/version/flags, rdlen
        q += b"\x00" + struct.pack(">HHIH", 41, edns, 0, 0)
    return q


def dns_seed(query, tcp=False):
    return Seed().int(0, 255, 1 if tcp else 0).bytes(query).build()


def dns():
    t = "dns_responder_fuzz"
    write(t, "a", dns_seed(dns_query("web1.qswitch.internal")))
    write(t, "aaaa_mixed_case", dns_seed(dns_query("WeB1.QSwitch.Internal", qtype=28)))
    write(t, "any_short_name", dns_seed(dns_query("web1", qtype=255)))
    write(t, "ptr_v4", dns_seed(dns_query("15.2.0.10.in-addr.arpa", qtype=12)))
    nibbles = ".".join(reversed("fec0000000000000505400fffe123456")) + ".ip6.arpa"
    write(t, "ptr_v6", dns_seed(dns_query(nibbles, qtype=12)))
    write(t, "ptr_no_name", dns_seed(dns_query("99.2.0.10.in-addr.arpa", qtype=12)))
    write(t, "nxdomain", dns_seed(dns_query("nosuch.qswitch.internal")))
    write(t, "nodata_mx", dns_seed(dns_query("db.qswitch.internal", qtype=15)))
    write(t, "soa_apex_tcp", dns_seed(dns_query("qswitch.internal", qtype=6), tcp=True))
    write(t, "many_truncated", dns_seed(dns_query("many.qswitch.internal")))
    write(t, "many_edns", dns_seed(dns_query("many.qswitch.internal", edns=1232)))
    write(t, "huge_tcp", dns_seed(dns_query("huge.qswitch.internal", qtype=28), tcp=True))
    write(t, "edns_version_1", dns_seed(dns_query("web1.qswitch.internal", edns=4096)[:-5] +
                                        b"\x00\x01\x00\x00\x00\x00"))
    write(t, "outside", dns_seed(dns_query("example.org")))
    write(t, "response_bit", dns_seed(dns_query("web1.qswitch.internal", flags=0x8180)))
    write(t, "two_questions", dns_seed(dns_query("web1.qswitch.internal", qdcount=2) +
                                       dns_name("db.qswitch.internal") + b"\x00\x01\x00\x01"))
    # A compression pointer in the question that points at itself (RFC 1035 section 4.1.4).
    write(t, "pointer_loop", dns_seed(struct.pack(">HHHHHH", 1, 0x0100, 1, 0, 0, 0) +
                                      b"\xc0\x0c\x00\x01\x00\x01"))
    write(t, "garbage", dns_seed(bytes(range(7, 40))))


# ---- metrics_http_fuzz -----------------------------------------------------------------------
def http_seed(text, limit_index=0, cuts=()):
    s = Seed().int(0, 3, limit_index).int(0, 8, len(cuts))
    for c in cuts:
        s.int(1, 300, c)
    return s.bytes(text.encode("latin-1")).build()


def metrics():
    t = "metrics_http_fuzz"
    write(t, "get_metrics", http_seed("GET /metrics HTTP/1.1\r\nHost: localhost:9100\r\nAccept: */*\r\n\r\n"))
    write(t, "head_with_query_lf_only", http_seed("HEAD /metrics?name[]=x HTTP/1.0\n\n", cuts=[1, 2, 3]))
    write(t, "post_is_405", http_seed("POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"))
    write(t, "other_path_404", http_seed("GET /other HTTP/1.1\r\n\r\n", cuts=[5]))
    write(t, "bad_version", http_seed("GET /metrics HTTP/2.0\r\n\r\n"))
    write(t, "nul_byte", http_seed("GET /met\x00rics HTTP/1.1\r\n\r\n"))
    write(t, "head_too_large", http_seed("GET /metrics HTTP/1.1\r\nX: " + "a" * 80 + "\r\n\r\n", limit_index=1))
    write(t, "no_request_line", http_seed("\r\n\r\n"))


# ---- control_line_fuzz -----------------------------------------------------------------------
def control():
    t = "control_line_fuzz"
    lines = {
        "help": '{"cmd":"help"}\n',
        "ports_with_id": '{"cmd":"ports","id":1}\n{"cmd":"stats","id":"x"}\n{"cmd":"macs","id":[1,{"a":null}]}\n',
        "port_add": '{"cmd":"port.add","args":{"mode":"dgram","address":"udp:127.0.0.1:5000-127.0.0.1:5001"}}\n'
                    '{"cmd":"port.add","args":{"mode":"listen","address":"tcp:[::1]:0"}}\n',
        "port_remove": '{"cmd":"port.remove","args":{"id":"listen-1"}}\n{"cmd":"port.remove","args":{"id":0}}\n',
        "capture": '{"cmd":"capture","args":{"port":0,"filter":"arp or (udp port 67 and not icmp)"}}\n'
                   '{"cmd":"capture.list"}\n{"cmd":"capture.stop","args":{"id":"1"}}\n',
        "slirp": '{"cmd":"hostfwd.add","args":{"spec":"tcp::8080-:80"}}\n{"cmd":"hostfwd.list"}\n'
                 '{"cmd":"hostfwd.remove","args":{"spec":"tcp::8080"}}\n{"cmd":"usernet"}\n{"cmd":"dhcp.leases"}\n',
        "attach_without_fd": '{"cmd":"port.attach","args":{"type":"dgram","name":"x"}}\n',
        "version_crlf_unterminated": '{"cmd":"version"}\r\n{"cmd":"version"}',
        "bad_requests": '\n[1,2]\n{"cmd":1}\n{"cmd":"nope"}\n{"cmd":"help","args":[]}\n{"x":1}\n{bad\n',
        "nested_64": '{"cmd":"help","id":' + "[" * 63 + "]" * 63 + "}\n" + '{"cmd":"help","id":' + "[" * 64 + "]" * 64 + "}\n",
        "too_long_line": '{"cmd":"help","id":"' + "x" * 600 + '"}\n{"cmd":"version"}\n',
        "unicode": '{"cmd":"port.add","args":{"mode":"dgram","address":"unix:/tmp/\\u0000x"}}\n{"cmd":"h\\u00e9lp"}\n',
    }
    for name, text in lines.items():
        write(t, name, text)


# ---- spec parsers ----------------------------------------------------------------------------
def specs():
    for i, s in enumerate(["tcp::8080-:80", "udp:127.0.0.1:5353-10.0.2.15:53", ":0-:22",
                           "tcp:0.0.0.0:2222-10.0.2.20:22", "tcp::8080", "udp:1.2.3.4:65535-:65535",
                           "tcp::80-10.0.2.2:80", "sctp::1-:1"]):
        write("hostfwd_spec_fuzz", "seed%d" % i, s)
    write("hostfwd_spec_fuzz", "ipv6-empty-host", "udp::53-[fec0::15]:53")
    write("hostfwd_spec_fuzz", "ipv6-loopback", "tcp:[::1]:8080-[fec0::5054:ff:fe12:3456]:80")
    write("hostfwd_spec_fuzz", "guest-by-mac", "tcp::8080-[52:54:00:12:34:56]:80")
    write("hostfwd_spec_fuzz", "guest-by-name", "tcp:[::1]:8080-Web1.qswitch.internal.:80")
    for i, s in enumerate(["", "net=10.0.3.0/24",
                           "net=192.168.76.0/255.255.255.0,host=192.168.76.1,dns=192.168.76.3,dhcpstart=192.168.76.100",
                           "hostname=guest,domainname=example.internal,dnssearch=a.example,dnssearch=b.example.",
                           "restrict=on,ipv6=off,mtu=9000",
                           "ipv6-net=fd00::/64,ipv6-host=fd00::2,ipv6-dns=fd00::3",
                           "hostfwd=tcp::8080-:80,hostfwd=udp::5353-10.0.2.15:53",
                           "lease=52:54:00:12:34:56:10.0.2.20,lease=52:54:00:12:34:57:10.0.2.21",
                           "bootfile=pxelinux.0,tftp=/tmp", "hostname=a,,b", "net=172.16.0.0",
                           "net=10.0.2.0/30", "vlan=10,net=10.0.10.0/24,hostfwd=tcp::8080-:80",
                           "vlan=4094"]):
        write("slirp_options_fuzz", "seed%d" % i, s)
    for i, s in enumerate(["unix:/tmp/q.dgram", "udp:127.0.0.1:5000", "udp:127.0.0.1:5000-127.0.0.1:5001",
                           "udp:[::1]:5000-[::1]:5001", "mcast:230.0.0.1:1234,localaddr=127.0.0.1",
                           "unix:/run/user/1000/qswitch/default.sock", "tcp:127.0.0.1:0", "tcp:[::1]:80",
                           "tcp:::1:80", "mcast:239.255.255.255:1"]):
        write("dgram_spec_fuzz", "seed%d" % i, s)
    for i, s in enumerate(["vni=42,local=10.1.1.1,remote=10.1.1.2",
                           "vni=16777215,local=[fd00::1]:4789,remote=[fd00::2]:4790,remote=[fd00::3]",
                           "vni=0,local=127.0.0.1:0,remote=127.0.0.2:4789,remote=127.0.0.3:1",
                           "qs0", "fd=3", "tap-15-chars-xy", "local=::,vni=1,remote=::1"]):
        write("net_specs_fuzz", "seed%d" % i, s)


# ---- lab_file_fuzz -------------------------------------------------------------------------
def lab_file():
    t = "lab_file_fuzz"
    files = {
        "empty": "",
        "switch": '[switch]\nmac-age = 300\nmac-max = 4096\nqueue-size = 1048576\nguests = 2\n'
                  'control = "none"\nmetrics = "9100"\npcap = "lab.pcap"\nslirp = false\n',
        "ports": '[[listen]]\naddress = "unix:/tmp/lab.sock"\nname = "web"\n\n'
                 '[[connect]]\naddress = "tcp:[::1]:5555"\n\n'
                 '[[dgram]]\naddress = "udp:127.0.0.1:5000"\nremote = "127.0.0.1:5001"\n\n'
                 '[[dgram]]\naddress = "mcast:239.0.0.1:5000"\nlocaladdr = "127.0.0.1"\n\n'
                 '[[vhost-user]]\naddress = "connect:/tmp/vu.sock"\n\n'
                 '[[tap]]\nifname = "qs0"\n\n[[tap]]\nfd = 3\n\n'
                 '[[vxlan]]\nvni = 42\nlocal = "127.0.0.1:0"\nremote = ["127.0.0.2", "127.0.0.3:4790"]\n',
        "slirp": '[[slirp]]\nname = "nat"\nnet = "10.0.5.0/24"\nhost = "10.0.5.1"\ndns = "10.0.5.53"\n'
                 'dhcpstart = "10.0.5.100"\nipv6 = true\nipv6-net = "fd00::/64"\nhostname = "a,b"\n'
                 'dnssearch = ["lab.example"]\nrestrict = true\nmtu = 9000\nmax-leases-per-port = 2\n'
                 'max-host-sockets = 100\nmax-host-sockets-per-port = 10\n'
                 'hostfwd = ["tcp::8080-:80", "udp:0.0.0.0:5353-10.0.5.20:53"]\n'
                 'lease = ["52:54:00:00:00:20:10.0.5.20"]\n',
        "slirp_vlans": '[[slirp]]\nvlan = 10\nnet = "10.0.10.0/24"\nhostfwd = ["tcp::8080-:80"]\n\n'
                       '[[slirp]]\nvlan = 20\nnet = "10.0.20.0/24"\nrestrict = true\n'
                       'hostfwd = ["tcp::8081-:80"]\n',
        "guests": '[[guest]]\nname = "web1"\nmac = "52:54:00:00:00:01"\n\n'
                  '[[guest]]\nname = "db"\nmac = "52:54:00:00:00:02"\n',
        "guest_ports": '[[guest]]\nname = "web1"\nmac = "52:54:00:00:00:01"\nport = "web"\n'
                       'ip = "dhcp"\n\n[[guest]]\nname = "db1"\nmac = "52:54:00:00:00:02"\n'
                       'port = "db"\nip = "10.0.20.10/24"\n\n'
                       '[[listen]]\naddress = "unix:web.sock"\nname = "web"\nvlan = 10\n'
                       'port-security = true\n\n'
                       '[[dgram]]\naddress = "unix:db.dgram"\nname = "db"\nvlan = 20\n'
                       'mac = "52:54:00:00:00:02"\n\n'
                       '[[vhost-user]]\naddress = "unix:vu.sock"\nname = "vu"\n\n'
                       '[[tap]]\nifname = "qslab0"\nname = "trunk"\ntrunk = "10,20"\nnative = 30\n',
        "example_lab": open(os.path.join(HERE, "..", "..", "docs", "lab-example.toml")).read(),
        "inline": 'switch = { mac-age = 60 }\nlisten = [{ address = "unix:/x", name = "x" }]\n',
        "errors": '[switch]\nmac-age = "300"\n[vlans]\n[[slirp]]\n[[slirp]]\n',
    }
    for name, text in files.items():
        write(t, name, text)


# ---- slirp_guest_fuzz ----------------------------------------------------------------------
def vlan_switch():
    # vlan_switch_fuzz: byte 0 picks the five ports' memberships (two bits each: access 10,
    # access 20, trunk 10,20 native 1, trunk 10,30) and, in its low bit, whether the last port is
    # secured; then frames: a port byte, a 16-bit size, the bytes.
    t = "vlan_switch_fuzz"

    def frame(dst, src, ethertype, payload, tag=None):
        b = bytes(dst) + bytes(src)
        if tag is not None:
            b += b"\x81\x00" + struct.pack(">H", tag)
        return b + struct.pack(">H", ethertype) + payload

    def rec(port, f):
        return bytes([port]) + struct.pack(">H", len(f)) + f

    bc = b"\xff" * 6
    mac = lambda i: bytes([0x52, 0x54, 0, 0, 0, i])
    write(t, "access_flood", bytes([0b00000000]) + rec(0, frame(bc, mac(1), 0x0800, bytes(50))) +
          rec(1, frame(mac(1), mac(2), 0x0800, bytes(50))))
    write(t, "trunk_push_pop", bytes([0b10100010]) + rec(0, frame(bc, mac(1), 0x0800, bytes(60))) +
          rec(1, frame(bc, mac(2), 0x0800, bytes(40), tag=10)) +
          rec(1, frame(mac(1), mac(2), 0x0800, bytes(30), tag=(5 << 13) | 10)))
    write(t, "native_and_prio", bytes([0b11100110]) + rec(1, frame(bc, mac(3), 0x0806, bytes(28))) +
          rec(0, frame(bc, mac(4), 0x0800, bytes(46), tag=3 << 13)) +
          rec(3, frame(bc, mac(5), 0x0800, bytes(46), tag=30)))
    write(t, "short_tag", bytes([0b10101010]) + rec(2, bc + mac(6) + b"\x81\x00\x00\x0a") +
          rec(0, frame(bc, mac(7), 0x88a8, bytes(50))))
    # The secured last port (byte 0's low bit; its bits 0-1 = 3: a trunk of 10 and 30, as port 0;
    # ports 1-3 access 10) tagging for VLAN 10, which has a slirp port: its lease 10.0.2.15 for
    # mac 1, another address, a DHCP discover from 0.0.0.0, ARP, IPv6 from its SLAAC address and
    # neighbour advertisements; then the same port as an access port of VLAN 20 (bits 0-1 = 1),
    # where only its ip= addresses hold.
    def ip4(src, proto=17, l4=bytes(8)):
        return struct.pack(">BBHHHBBH", 0x45, 0, 20 + len(l4), 0, 0, 64, proto, 0) + src + \
            b"\x0a\x00\x02\x02" + l4
    def arp(sender_mac, sender_ip):
        return b"\x00\x01\x08\x00\x06\x04\x00\x01" + sender_mac + sender_ip + bytes(6) + \
            b"\x0a\x00\x02\x02"
    def ip6(src, nh, l4):
        return struct.pack(">IHBB", 0x60000000, len(l4), nh, 255) + src + \
            bytes.fromhex("ff02" + "00" * 13 + "01") + l4
    slaac = bytes.fromhex("fec0000000000000" + "505400fffe000001")
    na = bytes([136, 0, 0, 0, 0x20, 0, 0, 0])
    gw6 = bytes.fromhex("fec0" + "00" * 13 + "02")
    frames = [(0x0800, ip4(b"\x0a\x00\x02\x0f")), (0x0800, ip4(b"\x0a\x00\x02\x63")),
              (0x0800, ip4(b"\x0a\x00\x09\x09")),
              (0x0800, ip4(bytes(4), 17, b"\x00\x44\x00\x43" + bytes(4))),
              (0x0806, arp(mac(1), b"\x0a\x00\x02\x0f")), (0x0806, arp(mac(1), b"\x0a\x00\x02\x02")),
              (0x86dd, ip6(slaac, 17, bytes(8))), (0x86dd, ip6(slaac, 58, na + slaac)),
              (0x86dd, ip6(slaac, 58, na + gw6))]
    write(t, "secured_ip_vlan10", bytes([0b00000011]) +
          b"".join(rec(4, frame(bc, mac(1), et, p, tag=10)) for et, p in frames))
    write(t, "secured_ip_vlan20", bytes([0b00000001]) +
          b"".join(rec(4, frame(bc, mac(1), et, p)) for et, p in frames))
    # Runs of frames with one head from one port (the replay's bursts take the switch's unicast
    # groups and same-head path, for frames that leave as they came): every port a trunk of 10
    # and 20 with native VLAN 1; port 1 makes mac 2 known in VLAN 10; port 0 sends to it in VLAN
    # 10, then the same addresses in VLAN 20 (unknown there: flooded), then untagged (native VLAN
    # 1: unknown), then VLAN 10 again.
    to2 = lambda tag, n: b"".join(rec(0, frame(mac(2), mac(1), 0x0800, bytes([i]) * 46, tag=tag))
                                  for i in range(n))
    write(t, "burst_same_head", bytes([0b10101010]) +
          rec(1, frame(bc, mac(2), 0x0800, bytes(46), tag=10)) +
          to2(10, 4) + to2(20, 3) + to2(None, 2) + to2(10, 3))
    # The secured port (a trunk of 10 and 30, as in secured_ip_vlan10; port 1 a trunk of 10 and
    # 20) sends a run with one head to mac 2, known in VLAN 10 on port 1: its lease, its lease,
    # another address (dropped), its lease.
    write(t, "burst_secured_same_head", bytes([0b00001011]) +
          rec(1, frame(bc, mac(2), 0x0800, bytes(46), tag=10)) +
          b"".join(rec(4, frame(mac(2), mac(1), 0x0800, ip4(src), tag=10))
                   for src in [b"\x0a\x00\x02\x0f", b"\x0a\x00\x02\x0f", b"\x0a\x00\x02\x63",
                               b"\x0a\x00\x02\x0f"]))


def ipv4_frame(proto, l4, src=b"\x0a\x00\x02\x0f", dst=b"\x0a\x00\x02\x02", frag=0):
    ip = struct.pack(">BBHHHBBH", 0x45, 0, 20 + len(l4), 0, frag, 64, proto, 0) + src + dst
    return eth(dst=b"\x52\x55\x0a\x00\x02\x02", payload=b"\x08\x00" + ip + l4)


def ipv6_frame(next_header, l4):
    src = bytes.fromhex("fec0" + "00" * 13 + "15")
    dst = bytes.fromhex("fec0" + "00" * 13 + "02")
    ip = struct.pack(">IHBB", 0x60000000, len(l4), next_header, 64) + src + dst
    return eth(dst=b"\x52\x55\x0a\x00\x02\x02", payload=b"\x86\xdd" + ip + l4)


def guest_seed(max_total, max_per_owner, ops):
    """ops: ("frame", owner, opens, bytes) | ("close", fd) | ("host",)."""
    s = Seed().int(0, 16, max_total).int(0, 8, max_per_owner)
    for op in ops:
        if op[0] == "frame":
            _, owner, opens, data = op
            s.int(0, 3, 0).int(0, 3, owner).bool(opens).int(0, 300, len(data)).bytes(data)
        elif op[0] == "close":
            s.int(0, 3, 2).int(-1, 64, op[1])
        else:
            s.int(0, 3, 3)
    return s.build()


def guest():
    t = "slirp_guest_fuzz"
    udp = lambda sport: ipv4_frame(17, struct.pack(">HHHH", sport, 53, 12, 0) + b"dns!")
    syn = ipv4_frame(6, struct.pack(">HHIIBBHHH", 40000, 80, 1, 0, 0x50, 0x02, 65535, 0, 0))
    ping = ipv4_frame(1, b"\x08\x00\x00\x00\x00\x07\x00\x01", dst=b"\x7f\x00\x00\x01")
    udp6 = ipv6_frame(17, struct.pack(">HHHH", 5000, 53, 8, 0))
    write(t, "flows_to_the_port_cap", guest_seed(8, 2, [("frame", 1, True, udp(1)), ("frame", 1, True, udp(2)),
                                                        ("frame", 1, True, udp(3)), ("frame", 1, True, udp(1))]))
    write(t, "switch_cap_then_close", guest_seed(2, 0, [("frame", 0, True, syn), ("frame", 1, True, ping),
                                                         ("frame", 2, True, udp6), ("close", 0),
                                                         ("frame", 2, True, udp6)]))
    write(t, "host_sockets_and_fragments", guest_seed(3, 3, [("host",), ("frame", 1, True, udp(9)),
                                                             ("frame", 1, True, ipv4_frame(17, b"\x00" * 8, frag=0x0010)),
                                                             ("close", 5), ("close", -1)]))


# ---- dns_frontend_fuzz ----------------------------------------------------------------------
DNS_QUERY = bytes.fromhex("123401000001000000000000") + b"\x04web1\x03lab\x00" + b"\x00\x01\x00\x01"


def dns_frontend_seed(mtu_index, cap, ipv6, ops):
    """ops: ("raw", bytes) | ("udp", v6, sport, payload, corrupt) | ("tcp", v6, port 0..3, flags,
    seq, ack, window, mss or None, body, prefix) | ("answer", verdict, size) | ("time", ms).
    seq/ack: ("expected",) | ("near", delta) | ("any", value)."""
    s = Seed().int(0, 3, mtu_index).int(1, 8, cap).bool(ipv6)

    def number(n):
        if n[0] == "expected":
            s.int(0, 2, 0)
        elif n[0] == "near":
            s.int(0, 2, 1).int(-3000, 3000, n[1])
        else:
            s.int(0, 2, 2).int(0, 2**32 - 1, n[1])

    for op in ops:
        if op[0] == "raw":
            s.int(0, 4, 0).int(0, 1600, len(op[1])).bytes(op[1])
        elif op[0] == "udp":
            _, v6, sport, payload, corrupt = op
            s.int(0, 4, 1).bool(v6).int(0, 65535, sport).int(0, 600, len(payload)).bytes(payload)
            s.int(0, 3, corrupt)
        elif op[0] == "tcp":
            _, v6, port, flags, seq, ack, window, mss, body, prefix = op
            s.int(0, 4, 2).bool(v6).int(0, 3, port).int(0, 255, flags)
            number(seq)
            number(ack)
            s.int(0, 65535, window).bool(mss is not None)
            if mss is not None:
                s.int(0, 255, mss)
            s.int(0, 300, len(body)).bytes(body).bool(prefix)
        elif op[0] == "answer":
            s.int(0, 4, 3).int(0, 2, op[1]).int(0, 70000, op[2])
        else:
            s.int(0, 4, 4).int(0, 20000, op[1])
    return s.build()


def dns_frontend():
    t = "dns_frontend_fuzz"
    E = ("expected",)
    SYN, ACK, FIN, RST = 0x02, 0x10, 0x01, 0x04
    write(t, "udp_both_families", dns_frontend_seed(2, 4, True, [
        ("udp", False, 40000, DNS_QUERY, 0), ("udp", True, 40001, DNS_QUERY, 0),
        ("answer", 1, 0), ("udp", False, 40002, DNS_QUERY, 0), ("udp", False, 40003, DNS_QUERY, 1),
        ("answer", 0, 3000), ("udp", True, 40004, DNS_QUERY, 0)]))
    conversation = [
        ("tcp", False, 0, SYN, ("any", 1000), E, 65535, 200, b"", False),
        ("tcp", False, 0, ACK, E, E, 65535, None, b"", False),
        ("tcp", False, 0, ACK, E, E, 65535, None, DNS_QUERY, True),
        ("tcp", False, 0, ACK | FIN, E, E, 65535, None, b"", False)]
    write(t, "tcp_one_query", dns_frontend_seed(2, 4, False, conversation))
    write(t, "tcp_big_reply_small_window_timers", dns_frontend_seed(1, 2, True, [
        ("answer", 0, 5000),
        ("tcp", True, 1, SYN, ("any", 7), E, 300, 64, b"", False),
        ("time", 200), ("tcp", True, 1, ACK, E, E, 300, None, b"", False),
        ("tcp", True, 1, ACK, E, E, 300, None, DNS_QUERY[:10], True),
        ("tcp", True, 1, ACK, ("near", 10), E, 300, None, DNS_QUERY[10:], False),
        ("time", 250), ("tcp", True, 1, ACK, E, ("near", -100), 300, None, b"", False),
        ("time", 5000), ("time", 20000)]))
    write(t, "tcp_cap_rst_refused", dns_frontend_seed(3, 1, False, [
        ("answer", 1, 0),
        ("tcp", False, 2, SYN, ("any", 5), E, 1000, None, b"", False),
        ("tcp", False, 3, SYN, ("any", 9), E, 1000, None, b"", False),
        ("tcp", False, 2, ACK, E, E, 1000, None, b"", False),
        ("tcp", False, 2, ACK, E, E, 1000, None, DNS_QUERY, True),
        ("tcp", False, 3, ACK, ("any", 1), ("any", 2), 1000, None, b"x", False),
        ("tcp", False, 2, RST, E, E, 0, None, b"", False),
        ("raw", ipv4_frame(6, b"\x00" * 10, dst=b"\x0a\x00\x02\x03"))]))
# ---- neighbours_fuzz -------------------------------------------------------------------------
def ip6addr(text):
    import ipaddress
    return ipaddress.IPv6Address(text).packed


def ndp_frame(src_mac, src, dst, icmp, hop=255, ext=b"", nh=58):
    body = ext + icmp
    ip = struct.pack(">IHBB", 0x60000000, len(body), nh, hop) + ip6addr(src) + ip6addr(dst)
    return eth(dst=b"\x33\x33\x00\x00\x00\x01", src=src_mac, payload=b"\x86\xdd" + ip + body)


def ndp_message(msg_type, target, flags=0, options=b""):
    return bytes([msg_type, 0, 0, 0, flags, 0, 0, 0]) + ip6addr(target) + options


def neighbours_seed(max_macs, expiry_ms, ops):
    """ops: ("frame", step_ms, bytes) | ("expire", step_ms)."""
    s = Seed().int(1, 8, max_macs).int(1, 100000, expiry_ms).int(0, 1000000, 1000)
    for op in ops:
        if op[0] == "frame":
            s.int(0, 7, 1).int(0, 20000, op[1]).bool(False).int(0, 400, len(op[2])).bytes(op[2])
        else:
            s.int(0, 7, 0).int(0, 20000, op[1])
    return s.build()


def neighbours():
    t = "neighbours_fuzz"
    a = b"\x52\x54\x00\x12\x34\x56"
    b = b"\x52\x54\x00\x12\x34\x57"
    slaac = "fec0::5054:ff:fe12:3456"
    dad = ndp_frame(a, "::", "ff02::1:ff12:3456", ndp_message(135, slaac))
    na = ndp_frame(a, "fe80::5054:ff:fe12:3456", "ff02::1", ndp_message(136, slaac, 0x20, b"\x02\x01" + a))
    ns = ndp_frame(a, slaac, "ff02::1:ff00:2", ndp_message(135, "fec0::2", 0, b"\x01\x01" + a))
    mld = ndp_frame(a, "fe80::5054:ff:fe12:3456", "ff02::16", bytes([143, 0, 0, 0, 0, 0, 0, 0]),
                    hop=1, ext=bytes([58, 0, 5, 2, 0, 0, 1, 0]), nh=0)
    udp = ndp_frame(a, slaac, "fec0::2", struct.pack(">HHHH", 5000, 53, 8, 0), hop=64, nh=17)
    write(t, "dad_then_use", neighbours_seed(4, 60000, [("frame", 0, dad), ("frame", 1000, udp),
                                                        ("frame", 10, ns), ("frame", 10, mld)]))
    probe_b = ndp_frame(b, "::", "ff02::1:ff12:3456", ndp_message(135, slaac))
    write(t, "dad_defended", neighbours_seed(4, 60000, [("frame", 0, udp), ("frame", 100, probe_b),
                                                        ("frame", 200, na)]))
    many = [("frame", 1, ndp_frame(bytes([2, 0, 0, 0, 0, i]), "fe80::%x" % i, "fec0::2",
                                    b"\x00" * 8, hop=64, nh=17)) for i in range(1, 12)]
    write(t, "more_macs_than_room", neighbours_seed(3, 60000, many))
    addrs = [("frame", 1, ndp_frame(a, "fec0::%x" % i, "fec0::2", b"\x00" * 8, hop=64, nh=17))
             for i in range(1, 12)]
    write(t, "more_addresses_than_room", neighbours_seed(2, 60000, addrs))
    write(t, "expiry", neighbours_seed(2, 5000, [("frame", 0, udp), ("frame", 4000, na),
                                                 ("expire", 2000), ("frame", 6000, ns), ("expire", 20000)]))
    bad_opt = ndp_frame(a, "::", "ff02::1", ndp_message(136, slaac, 0x20, b"\x02\x00" + a))
    write(t, "malformed_options", neighbours_seed(1, 1000, [("frame", 0, bad_opt), ("frame", 0, na[:70])]))


# ---- vhost_user_msg_fuzz ---------------------------------------------------------------------

def vhu(request, payload=b"", flags=0x1):
    return struct.pack("<III", request, flags, len(payload)) + payload


def vhu_region(gpa, size, uaddr, offset):
    return struct.pack("<QQQQ", gpa, size, uaddr, offset)


def vhu_seed(messages, chunk=1 << 20):
    """messages: (bytes, fd count); read as the port reads: the header, then the payload (never
    past a message's end), in pieces of at most `chunk` bytes, the fds with the first piece."""
    s = Seed()
    for data, nfds in messages:
        pieces = []
        for part in (data[:12], data[12:]):
            pieces += [part[i:i + chunk] for i in range(0, len(part), chunk)]
        for i, piece in enumerate(pieces):
            s.int(0, 300, len(piece)).int(0, 10, nfds if i == 0 else 0).bytes(piece)
    return s.build()

# What QEMU 7.2 sent at start-up, device start and stop (request, flags, fds, payload hex), the
# capture tests/backends/vhost_user_msg_test.cc decodes (kQemu72Startup).
QEMU72_CAPTURE = [
    (1, 0x1, 0, ""),
    (15, 0x1, 0, ""),
    (16, 0x1, 0, "1800000000000000"),
    (3, 0x1, 0, ""),
    (1, 0x1, 0, ""),
    (13, 0x1, 1, "0000000000000000"),
    (14, 0x1, 1, "0000000000000000"),
    (13, 0x1, 1, "0100000000000000"),
    (14, 0x1, 1, "0100000000000000"),
    (18, 0x1, 0, "0000000001000000"),
    (18, 0x1, 0, "0100000001000000"),
    (2, 0x1, 0, "0388007000000000"),
    (5, 0x9, 2, "0200000000000000000000000000000000000c000000000000f0ffcf657f0000000000000000000000001000000000000000f0070000000000f00fd0657f00000000100000000000"),
    (8, 0x1, 0, "0000000000010000"),
    (10, 0x1, 0, "0000000000000000"),
    (9, 0x1, 0, "000000000000000000f00fd0657f0000001010d0657f0000000010d0657f00000020100000000000"),
    (12, 0x1, 1, "0000000000000000"),
    (13, 0x1, 1, "0000000000000000"),
    (8, 0x1, 0, "0100000000010000"),
    (10, 0x1, 0, "0100000000000000"),
    (9, 0x1, 0, "010000000000000000f010d0657f0000001011d0657f0000000011d0657f00000020110000000000"),
    (12, 0x1, 1, "0100000000000000"),
    (13, 0x1, 1, "0100000000000000"),
    (5, 0x9, 2, "0200000000000000000000000000000000000d000000000000f0ffcf657f0000000000000000000000000f00000000000000f1070000000000f00ed0657f000000000f0000000000"),
    (5, 0x9, 1, "01000000000000000000000000000000000000080000000000f0ffcf657f00000000000000000000"),
    (11, 0x1, 0, "0000000000000000"),
    (11, 0x1, 0, "0100000000000000"),
    (18, 0x1, 0, "0000000001000000"),
    (18, 0x1, 0, "0100000001000000"),
]


def vhost_user():
    t = "vhost_user_msg_fuzz"
    u64 = lambda v: struct.pack("<Q", v)
    state = lambda i, n: struct.pack("<II", i, n)
    table = lambda regions, count=None: struct.pack("<II", len(regions) if count is None else count, 0) + b"".join(regions)
    r0 = vhu_region(0, 0xA0000, 0x7F0000000000, 0)
    r1 = vhu_region(0x100000, 0x7FF00000, 0x7F0000100000, 0x100000)
    addr = struct.pack("<IIQQQQ", 0, 0, 0x1000, 0x3000, 0x2000, 0)
    # QEMU's start-up of a virtio-net vhost-user device, in order.
    startup = [(vhu(1), 0), (vhu(15), 0), (vhu(16, u64(0x18)), 0), (vhu(3), 0), (vhu(1), 0),
               (vhu(13, u64(0)), 1), (vhu(14, u64(0)), 1), (vhu(13, u64(1)), 1), (vhu(2, u64(0x17000BBAB)), 0),
               (vhu(5, table([r0, r1]), flags=0x9), 2), (vhu(8, state(0, 256)), 0),
               (vhu(10, state(0, 0)), 0), (vhu(9, addr), 0), (vhu(12, u64(0)), 1),
               (vhu(13, u64(0)), 1), (vhu(18, state(0, 1)), 0), (vhu(20, u64(1500), flags=0x9), 0),
               (vhu(11, state(0, 0)), 0)]
    write(t, "qemu_startup", vhu_seed(startup))
    write(t, "qemu72_capture", vhu_seed([(vhu(r, bytes.fromhex(h), flags=f), n) for r, f, n, h in QEMU72_CAPTURE]))
    write(t, "qemu_startup_byte_by_byte", vhu_seed(startup[:9], chunk=1))
    write(t, "qemu_startup_in_7_byte_reads", vhu_seed(startup, chunk=7))
    write(t, "config_and_mem_slots",
          vhu_seed([(vhu(24, struct.pack("<III", 0, 12, 0) + bytes(12)), 0),
                    (vhu(25, struct.pack("<III", 0, 6, 1) + bytes(6)), 0), (vhu(36), 0),
                    (vhu(37, bytes(8) + r1), 1), (vhu(38, bytes(8) + r1), 0), (vhu(21), 1),
                    (vhu(14, u64(0x101)), 0)]))
    regions8 = [vhu_region(i << 30, 1 << 20, 0x7F0000000000 + (i << 30), 0) for i in range(8)]
    write(t, "eight_regions", vhu_seed([(vhu(5, table(regions8)), 8)]))
    write(t, "overlapping_regions", vhu_seed([(vhu(5, table([r1, vhu_region(0x200000, 0x1000, 0, 0)])), 2)]))
    write(t, "unknown_request", vhu_seed([(vhu(1), 0), (vhu(99), 0), (vhu(1), 3)]))
    write(t, "region_count_mismatch", vhu_seed([(vhu(5, table([r0], count=2)), 1)]))
    write(t, "fd_on_get_features", vhu_seed([(vhu(1), 1)]))
    write(t, "too_many_fds", vhu_seed([(vhu(5, table([r0])), 9)]))
    write(t, "bad_version", vhu_seed([(vhu(1, flags=0x2), 0)]))
    write(t, "reply_flag_on_a_request", vhu_seed([(vhu(1, flags=0x5), 0)]))
    write(t, "half_message_with_fds", vhu_seed([(vhu(5, table([r0, r1]))[:30], 2)]))

# ---- virtqueue_fuzz --------------------------------------------------------------------------
# Mirrors virtqueue_fuzz.cc's reads. A descriptor is ("buf", region, off, len, flags, next),
# ("table", region, off, flags, next, [leaf descriptors], len or None for 16 * entries),
# ("raw", addr, len, flags, next) or ("empty", flags, next).
VQ_F_NEXT, VQ_F_WRITE = 1, 2


def vq_descriptor(s, d, num, sizes):
    kind = {"buf": 0, "table": 1, "raw": 2, "empty": 3}[d[0]]
    s.int(0, 3, kind)
    if d[0] == "buf":
        _, r, off, length, flags, nxt = d
        s.int(0, 7, flags).int(0, num, nxt).int(0, len(sizes) - 1, r).int(0, sizes[r], off)
        s.int(0, sizes[r] + 64, length)
    elif d[0] == "table":
        _, r, off, flags, nxt, leaves, length = d
        s.int(0, 7, flags).int(0, num, nxt).int(0, len(sizes) - 1, r).int(0, sizes[r], off)
        s.int(0, num + 1, len(leaves)).bool(length is not None)
        if length is not None:
            s.int(0, 0x400, length)
        for e, leaf in enumerate(leaves):
            if off + 16 * (e + 1) <= sizes[r]:
                vq_descriptor(s, leaf, num, sizes)
    elif d[0] == "raw":
        _, addr, length, flags, nxt = d
        s.int(0, 7, flags).int(0, num, nxt).int(0, 2**64 - 1, addr).int(0, 2**32 - 1, length)
    else:
        _, flags, nxt = d
        s.int(0, 7, flags).int(0, num, nxt)


def vq_seed(num, descs, heads, ops, regions=((0x4000, 0, 0),), event_idx=False, start=0,
            placement=None, probe=(0, 0x4000, 0x100)):
    """regions: (size, place 0 adjacent / 1 gap / 2 anywhere, gap or address).
    ops: ("pop", cap) | ("rx", cap, len, cut) | ("notify", cap, no_interrupt, used_event)
    | ("disable", cap) | ("enable", cap) | ("offer", cap, [heads], index, descriptor)."""
    s = Seed().int(1, 3, len(regions)).int(0, 8, num.bit_length() - 1)
    s.bool(placement is not None)
    if placement is not None:
        for off in placement:
            s.int(0, 0x3000, off)
    s.bool(event_idx).int(0, 65535, start).int(0, 65535, start)
    sizes = []
    for size, place, where in regions:
        s.int(1, 0x4000, size).int(0, 2, place)
        if place == 1:
            s.int(0, 0x10000, where)
        elif place == 2:
            s.int(0, 2**64 - 1, where)
        sizes.append(size)
    s.int(0, len(regions) - 1, probe[0]).int(0, 0x8000, probe[1]).int(0, 0xC000, probe[2])
    for i in range(num):
        vq_descriptor(s, descs[i] if i < len(descs) else ("empty", 0, 0), num, sizes)
    s.int(0, num + 1, len(heads))
    for h in heads:
        s.int(0, num, h)
    for op in ops:
        s.int(1, 64, op[1])
        code = ["pop", "rx", "notify", "disable", "enable", "offer"].index(op[0])
        s.int(0, 5, code)
        if op[0] == "rx":
            s.int(0, 3000, op[2]).int(0, op[2], op[3])
        elif op[0] == "notify":
            s.int(0, 1, op[2]).int(0, 65535, op[3])
        elif op[0] == "offer":
            s.int(0, num, len(op[2]))
            for h in op[2]:
                s.int(0, num, h)
            s.int(0, num - 1, op[3])
            vq_descriptor(s, op[4], num, sizes)
    return s.build()


def virtqueue():
    t = "virtqueue_fuzz"
    N, W = VQ_F_NEXT, VQ_F_WRITE
    tx = [("buf", 0, 0x100 * i, 64 + i, 0, 0) for i in range(8)]
    write(t, "tx_single_descriptors", vq_seed(8, tx, [0, 1, 2, 3], [("pop", 16)] * 5 + [("notify", 16, 0, 0)]))
    chains = [("buf", 0, 0x10, 14, N, 1), ("buf", 0, 0x200, 1500, W, 0),
              ("table", 0, 0x1000, 0, 0, [("buf", 0, 0x20, 12, N, 1), ("buf", 0, 0x40, 100, N, 2),
                                           ("buf", 0, 0x800, 1000, W, 0)], None),
              ("buf", 0, 0x300, 20, N, 4), ("table", 0, 0x1100, W, 0, [("buf", 0, 0x900, 64, W, 0)], None)]
    write(t, "chains_and_indirect_tables", vq_seed(8, chains, [0, 2, 3], [("pop", 16)] * 4 + [("enable", 16)]))
    rx = [("buf", i % 2, 0xe00 if i == 0 else 0x200 * i, 512, W, 0) for i in range(8)]
    write(t, "mergeable_rx_across_adjacent_regions",
          vq_seed(8, rx, [0, 1, 2, 3, 4], [("rx", 8, 1400, 700), ("notify", 8, 0, 2), ("rx", 8, 3000, 10),
                                           ("enable", 8), ("offer", 8, [5, 6, 7], 0, ("buf", 1, 0, 600, W, 0)),
                                           ("rx", 8, 1514, 0), ("notify", 8, 0, 3)],
                  regions=((0x1000, 0, 0), (0x2000, 0, 0)), event_idx=True))
    wrap = [("buf", 0, 0x40 * i, 100, W, 0) for i in range(4)]
    write(t, "indices_wrap_at_65535",
          vq_seed(4, wrap, [0, 1, 2, 3], [("pop", 4), ("pop", 4), ("rx", 4, 100, 50),
                                         ("offer", 4, [0, 1], 1, ("buf", 0, 0, 100, W, 0)), ("pop", 4),
                                         ("rx", 4, 60, 60), ("disable", 4), ("enable", 4)],
                  event_idx=True, start=65534))
    loop = [("buf", 0, 0, 4, N, 1), ("buf", 0, 4, 4, N, 0)]
    write(t, "descriptor_loop", vq_seed(8, loop, [0], [("pop", 64), ("pop", 64)]))
    hostile = ((0x1000, 0, 0), (0x1000, 1, 0x1000), (0x800, 2, 0xFFFFFFFFFFFFF800))
    write(t, "buffer_wrapping_2_64", vq_seed(8, [("raw", 0xFFFFFFFFFFFFFFF0, 0x20, 0, 0)], [0], [("pop", 8)],
                                             regions=hostile))
    write(t, "indirect_with_next", vq_seed(8, [("table", 0, 0x10, N, 1, [], 24)], [0], [("pop", 8)],
                                           regions=hostile))
    write(t, "buffer_into_a_hole", vq_seed(8, [("buf", 1, 0xff0, 0x20, 0, 0)], [0], [("pop", 8)],
                                           regions=hostile))
    write(t, "rings_placed_anywhere", vq_seed(4, wrap, [0, 1], [("pop", 4), ("pop", 4)],
                                              placement=(0x100, 0x42, 0x204)))


# ---- offload_fuzz ----------------------------------------------------------------------------
# byte 0: fix-ups (offload_fuzz.cc), then a 12-byte virtio_net_hdr (little-endian), then the frame.
def vnet_hdr(flags, gso, hdr_len, gso_size, start, offset):
    return struct.pack("<BBHHHHH", flags, gso, hdr_len, gso_size, start, offset, 1)


def tcp_frame(payload, v6=False, vlan=False, ip_options=b"", tcp_options=b"", flags=0x99):
    e = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01"
    if vlan:
        e += b"\x81\x00\x00\x07"
    tcp = struct.pack(">HHIIBBHHH", 4096, 80, 0x01020304, 0x0a0b0c0d, (5 + len(tcp_options) // 4) << 4,
                      flags, 0x2000, 0, 0) + tcp_options
    if v6:
        ip = struct.pack(">IHBB", 0x60000000, len(tcp) + len(payload), 6, 64) + bytes(range(32))
        e += b"\x86\xdd"
    else:
        ihl = 5 + len(ip_options) // 4
        ip = struct.pack(">BBHHHBBH", 0x40 | ihl, 0, ihl * 4 + len(tcp) + len(payload), 0x1234, 0x4000,
                         64, 6, 0) + b"\x0a\x00\x00\x01\x0a\x00\x00\x02" + ip_options
        ip = ip[:10] + struct.pack(">H", 0xFFFF ^ csum(ip)) + ip[12:]
        e += b"\x08\x00"
    return e + ip + tcp + payload, len(e) + len(ip)


def offload():
    t = "offload_fuzz"
    pay = b"\x11" * 64 + b"\x22" * 64 + b"\x33" * 8
    f, l4 = tcp_frame(pay)
    write(t, "tso4_three_segments", b"\x00" + vnet_hdr(1, 1, l4 + 20, 64, l4, 16) + f)
    f, l4 = tcp_frame(bytes(range(256)) + b"xyz", vlan=True, ip_options=b"\x94\x04\x00\x00",
                      tcp_options=b"\x01\x01\x08\x0a" + b"\x00" * 8)
    write(t, "tso4_vlan_ip_and_tcp_options", b"\x00" + vnet_hdr(1, 0x81, 0, 100, l4, 16) + f)
    f, l4 = tcp_frame(bytes(range(200)) * 2, v6=True)
    write(t, "tso6", b"\x00" + vnet_hdr(1, 4, 0, 128, l4, 16) + f)
    write(t, "tso6_without_needs_csum", b"\x00" + vnet_hdr(0, 4, 0, 64, 0, 0) + f)
    f, l4 = tcp_frame(b"")
    write(t, "tso4_padded_to_1024_segments", b"\x03" + vnet_hdr(1, 1, 65535, 64, l4, 16) + f)
    f, l4 = tcp_frame(b"short", flags=0x18)
    write(t, "tso4_not_cut", b"\x00" + vnet_hdr(1, 1, 0, 1448, l4, 16) + f)
    udp = b"\x02" * 12 + b"\x08\x00" + b"\x45" + b"\x00" * 8 + b"\x11" + b"\x00" * 10 + b"\x00\x35" * 4 + b"abc"
    write(t, "csum_only_udp", b"\x10" + vnet_hdr(1, 0, 0, 0, 34, 6) + udp)


# ---- vhost_user_session_fuzz -------------------------------------------------------------------
# Mirrors vhost_user_session_fuzz.cc's reads: each session's memory layout, then operations
# (session, code, the operation's own numbers). Frames are built by the target from a few numbers.
VUS_OPS = {"handshake": 0, "start": 1, "frame": 2, "post_rx": 4, "kick": 5, "turns": 6, "message": 8,
           "stop": 9, "enable": 10, "sink_frame": 11, "poke": 12, "raw": 13, "close": 14, "shrink": 15}
VUS_ALL_FEATURES = 0x7FFF  # every bit of kFeatureList
# kFeatureList's bit of each feature
VUS_F = {"version1": 0, "indirect": 1, "event_idx": 2, "mrg_rxbuf": 3, "csum": 4, "guest_csum": 5,
         "host_tso4": 6, "host_tso6": 7, "guest_tso4": 8, "guest_tso6": 9, "host_ecn": 10,
         "guest_ecn": 11, "mac": 12, "mtu": 13, "protocol_features": 14}
VUS_DST = {"broadcast": 0, "other": 1, "sink": 2, "self": 3}


def vus_features(*without):
    m = VUS_ALL_FEATURES
    for name in without:
        m &= ~(1 << VUS_F[name])
    return m


def vus_frame(s, kind="tcp4", dst="other", payload=64, vlan=False, options=False, raw=b"", tcp_flags=0x18):
    """kind: raw, tcp4, tcp6, udp4 (build_frame())."""
    s.int(0, 4, VUS_DST[dst]).bool(False).bool(vlan)
    if vlan:
        s.int(0, 65535, 7)
    k = ["raw", "tcp4", "tcp6", "udp4"].index(kind)
    s.int(0, 3, k)
    if k == 0:
        s.int(0, 1600, len(raw)).int(0, 65535, 0x0806).bytes(raw)
        return
    big = payload > 1600
    s.bool(big).int(0, 65535 if big else 1600, payload)
    if k != 3:
        s.int(0, 255, tcp_flags)
    s.bool(options)


def vus_op(s, session, name):
    s.bool(session == 1).int(0, 15, VUS_OPS[name])
    return s


def vus_seed(ops, layouts=((0, 0, 0), (0, 0, 0))):
    """layouts: per session (0 one region / 1 two adjacent / 2 two with a hole, split index, gpa base index).
    ops: (session, name, args...):
      handshake(protocol mask: 1 REPLY_ACK, 2 NET_MTU)  start(feature mask, log2 num)
      frame(header: (0,) zero | (1, ecn, gso_size) GSO | (2,) csum | (3, flags, type, l, g, s, o) raw,
            layout 0 one / 1 header+frame / (2, pieces) / (3, pieces) indirect, writable_tail, kick, **frame)
      post_rx(buffers: [(class 0..4, extra, two pieces)], kick)  kick(tx)  turns(n)  stop()
      enable(tx, on)  sink_frame(**frame)  poke(offset, bytes)  raw(bytes, fds)  close()  shrink(size)"""
    s = Seed()
    for layout, split, base in layouts:
        s.int(0, 2, layout)
        if layout > 0:
            s.int(0, 15, split)
        s.int(0, 3, base)
    for op in ops:
        who, name, args = op[0], op[1], op[2:]
        vus_op(s, who, name)
        if name == "handshake":
            s.int(0, 255, args[0])
        elif name == "start":
            s.int(0, 65535, args[0]).int(0, 8, args[1])
        elif name == "frame":
            header, layout, tail, kick, frame = args
            vus_frame(s, **frame)
            s.int(0, 3, header[0])
            if header[0] == 1 and frame.get("kind", "tcp4") in ("tcp4", "tcp6"):
                s.bool(header[1]).int(0, 9000, header[2])
            elif header[0] == 3:
                s.int(0, 255, header[1]).int(0, 255, header[2])
                for v in header[3:]:
                    s.int(0, 65535, v)
            if isinstance(layout, tuple):
                s.int(0, 3, layout[0]).int(2 if layout[0] == 2 else 1, 7 if layout[0] == 2 else 4, layout[1])
            else:
                s.int(0, 3, layout)
            s.bool(tail).bool(kick)
        elif name == "post_rx":
            buffers, kick = args
            s.int(1, 16, len(buffers))
            for cls, extra, two in buffers:
                s.int(0, 4, cls)
                if cls == 0:
                    s.int(0, 200, extra)
                s.bool(two)
            s.bool(kick)
        elif name == "kick":
            s.bool(args[0])
        elif name == "turns":
            s.int(1, 4, args[0])
        elif name == "enable":
            s.bool(args[0]).bool(args[1])
        elif name == "sink_frame":
            vus_frame(s, **args[0])
        elif name == "poke":
            s.int(0, 0x80000 - 1, args[0]).int(0, 64, len(args[1])).bytes(args[1])
        elif name == "raw":
            s.int(0, 300, len(args[0])).int(0, 3, args[1]).bytes(args[0])
        elif name == "shrink":
            s.int(0, 0x80000, args[0])
    return s.build()


def vhost_user_session():
    t = "vhost_user_session_fuzz"
    A, B = 0, 1
    rx8 = [(2, 0, False)] * 8
    up = [(A, "handshake", 3), (B, "handshake", 3), (A, "start", VUS_ALL_FEATURES, 8),
          (B, "start", VUS_ALL_FEATURES, 8), (A, "post_rx", rx8, True), (B, "post_rx", rx8, True),
          (A, "turns", 2)]
    plain = ((0,), 0, False, True)
    write(t, "handshake_and_frames", vus_seed(up + [
        (A, "frame") + plain + (dict(kind="raw", dst="broadcast", raw=bytes(46)),),
        (A, "turns", 2),
        (B, "frame") + plain + (dict(kind="tcp4", dst="other", payload=100),),
        (A, "turns", 2),
        (A, "frame", (0,), 1, False, True, dict(kind="udp4", dst="sink", payload=200)),
        (B, "frame", (0,), 1, False, True, dict(kind="tcp6", dst="other", payload=1400)),
        (A, "turns", 3),
        (A, "stop",), (A, "turns", 1)]))
    # A large TCP segment from A: cut by the switch for the sink, whole into B's mergeable buffers
    # (B takes TSO); B restarts without GUEST_ECN: a segment with ECN is cut for it, one without
    # goes whole into a 64 KiB buffer.
    gso = ((1, False, 1448), 0, False, True)
    write(t, "tso_cut_and_whole", vus_seed(up + [
        (A, "frame") + gso + (dict(kind="tcp4", dst="broadcast", payload=6000, options=True),),
        (A, "turns", 3),
        (B, "start", vus_features("guest_ecn"), 6),
        (B, "post_rx", [(4, 0, False), (1, 0, True), (2, 0, False)], True),
        (A, "frame") + gso + (dict(kind="tcp4", dst="other", payload=3000),),
        (A, "frame", (1, True, 700), (3, 3), False, True, dict(kind="tcp6", dst="other", payload=2000, vlan=True)),
        (A, "turns", 3),
        (A, "frame", (2,), (2, 5), True, True, dict(kind="udp4", dst="other", payload=900)),
        (A, "turns", 2)]))
    # No VERSION_1 and no MRG_RXBUF: 10-byte headers, one buffer per frame (too small ones drop).
    legacy = vus_features("version1", "mrg_rxbuf")
    write(t, "legacy_header_no_mergeable", vus_seed([
        (A, "handshake", 1), (B, "handshake", 0), (A, "start", legacy, 4), (B, "start", legacy, 2),
        (B, "post_rx", [(0, 100, False), (3, 0, True)], True), (A, "turns", 1),
        (A, "frame") + plain + (dict(kind="tcp4", dst="other", payload=60),),
        (A, "frame") + plain + (dict(kind="tcp4", dst="other", payload=1000),),
        (A, "turns", 2), (B, "post_rx", [(2, 0, False)] * 3, True), (B, "kick", False),
        (A, "turns", 2)]))
    # Two memory regions (adjacent, or with a hole) and no PROTOCOL_FEATURES (rings enabled at once).
    write(t, "two_regions_event_idx", vus_seed([
        (A, "start", vus_features("protocol_features"), 3), (B, "handshake", 3),
        (B, "start", VUS_ALL_FEATURES, 5),
        (B, "post_rx", [(3, 0, True)] * 4, False), (A, "post_rx", [(2, 0, True)] * 4, True), (A, "turns", 1),
        (A, "frame", (0,), (3, 2), False, True, dict(kind="tcp4", dst="other", payload=1200)),
        (B, "frame", (0,), (2, 3), False, True, dict(kind="udp4", dst="other", payload=3000)),
        (A, "turns", 2), (B, "enable", True, False), (B, "enable", True, True), (A, "turns", 2)],
        layouts=((1, 3, 0), (2, 5, 2))))
    # The sink sends to both guests (broadcast, then unicast once their MACs are known).
    write(t, "sink_to_guests", vus_seed(up + [
        (A, "sink_frame", dict(kind="tcp4", dst="broadcast", payload=500)),
        (A, "turns", 2),
        (A, "frame") + plain + (dict(kind="raw", dst="sink", raw=bytes(50)),),
        (B, "frame") + plain + (dict(kind="raw", dst="sink", raw=bytes(50)),),
        (A, "turns", 2),
        (A, "sink_frame", dict(kind="udp4", dst="other", payload=300)),
        (A, "sink_frame", dict(kind="udp4", dst="self", payload=30)),
        (A, "turns", 2)]))
    # Hostile guests: a ring poked, memory shrunk under the port, raw bytes, a reconnect.
    write(t, "hostile_ring_shrink_reconnect", vus_seed(up + [
        (A, "poke", 0x1002, b"\xff\x00"), (A, "kick", True), (A, "turns", 1),
        (B, "shrink", 0x1000), (B, "kick", True), (B, "turns", 1),
        (A, "raw", bytes.fromhex("010000000100000000000000"), 1), (A, "turns", 1),
        (A, "close",), (A, "turns", 1), (A, "close",), (A, "handshake", 3),
        (A, "start", VUS_ALL_FEATURES, 8), (A, "turns", 1)]))


if __name__ == "__main__":
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    stream()
    datagrams()
    vxlan()
    dhcp()
    dns()
    guest()
    dns_frontend()
    neighbours()
    vhost_user()
    virtqueue()
    vhost_user_session()
    offload()
    metrics()
    control()
    specs()
    lab_file()
    vlan_switch()
    for t in sorted(os.listdir(OUT)):
        print("%-22s %d seeds" % (t, len(os.listdir(os.path.join(OUT, t)))))
