// tools/qswitch/services/capture_commands.h: live capture over the control channel, the server
// side.
//
// Theory of operation
// - "capture" {"port": ID (optional), "filter": "BPF" (optional)} validates the port and
//   compiles the filter (a bad one is an error reply naming libpcap's message), replies
//   {"capturing": true, "port": ID|null, "filter": "..."} and takes the connection over: from
//   then on it carries a pcap byte stream (global header first) written by tools::CaptureHub,
//   until the client closes it. "capture.list" lists the sessions with their counters;
//   "capture.stop" {"id"} ends one (the only way to end a --pcap FILE capture early).
// - The client (`qswitch ctl capture`) is client/capture_client.h; the pcap stream parser it
//   uses is client/pcap_stream.h.
#pragma once

#include "tools/qswitch/services/capture_hub.h"
#include "tools/qswitch/services/control_api.h"

namespace qswitch::tools {

void register_capture_commands(ControlApi& api, tools::CaptureHub& hub);

}  // namespace qswitch::tools
