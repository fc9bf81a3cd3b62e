// tools/qswitch/services/capture_commands.cc: see the header.
#include "tools/qswitch/services/capture_commands.h"

#include <string>

#include "backends/runtime/io/log.h"
#include "switch/types.h"
#include "tools/qswitch/config/config_parse.h"

namespace qswitch::tools {

namespace {

using json = nlohmann::json;

}  // namespace

void register_capture_commands(ControlApi& api, tools::CaptureHub& hub) {
  api.add(
      "capture",
      "stream a live pcap of the whole switch or one port on this connection; args: "
      "\"port\": ID, \"filter\": BPF (both optional)",
      [&hub](const json& args) {
        std::string error;
        if (!check_arg_names(args, {"port", "filter"}, "capture", error)) {
          return Reply::failure(error);
        }
        tools::CaptureSpec spec;
        if (auto at = args.find("port"); at != args.end() && !at->is_null()) {
          uint32_t id = 0;
          bool ok = false;
          if (at->is_number_unsigned()) {
            const uint64_t v = at->get<uint64_t>();
            ok = v < sw::kNoPort;
            id = static_cast<uint32_t>(v);
          } else if (at->is_string()) {
            ok = parse_port_id(at->get_ref<const std::string&>(), id);
          }
          if (!ok) {
            return Reply::failure("capture: \"port\" is " + dump_json(*at) +
                                  "; expected a port id (a number; `ports` lists them)");
          }
          spec.port = id;
        }
        if (auto at = args.find("filter"); at != args.end() && !at->is_null()) {
          if (!at->is_string()) {
            return Reply::failure(std::string("capture: \"filter\" is a JSON ") + at->type_name() +
                                  ", expected a string (a pcap-filter(7) expression)");
          }
          spec.filter = at->get_ref<const std::string&>();
        }
        if (!hub.validate(spec, error)) return Reply::failure(error);
        Reply reply = Reply::success(json{{"capturing", true},
                                          {"port", spec.port ? json(*spec.port) : json(nullptr)},
                                          {"filter", spec.filter}});
        reply.takeover = [&hub, spec](io::Fd fd) {
          std::string why;
          // The port may have gone between the reply and now: the client sees EOF.
          if (hub.attach(spec, std::move(fd), "control", why) == 0) {
            io::log_line("capture not started: %s", why.c_str());
          }
        };
        return reply;
      });
  api.add("capture.stop",
          "end a capture session (its pcap stays whole); args: \"id\" from "
          "capture.list",
          [&hub](const json& args) {
            std::string error;
            if (!check_arg_names(args, {"id"}, "capture.stop", error)) return Reply::failure(error);
            auto at = args.find("id");
            uint32_t id = 0;
            bool ok = false;
            if (at != args.end() && at->is_number_unsigned()) {
              ok = at->get<uint64_t>() < sw::kNoPort;
              id = static_cast<uint32_t>(at->get<uint64_t>());
            } else if (at != args.end() && at->is_string()) {
              ok = parse_port_id(at->get_ref<const std::string&>(), id);
            }
            if (!ok) {
              return Reply::failure("capture.stop needs \"id\": a session id from capture.list");
            }
            if (!hub.stop(id)) {
              return Reply::failure("no capture session " + std::to_string(id) +
                                    " (capture.list shows them)");
            }
            return Reply::success(json{{"stopped", id}});
          });
  api.add("capture.list", "the capture sessions running, with their counters",
          [&hub](const json& args) {
            std::string error;
            if (!check_arg_names(args, {}, "capture.list", error)) return Reply::failure(error);
            json rows = json::array();
            for (const tools::CaptureInfo& i : hub.list()) {
              rows.push_back(json{{"id", i.id},
                                  {"port", i.port ? json(*i.port) : json("all")},
                                  {"filter", i.filter},
                                  {"output", i.output},
                                  {"captured", i.captured},
                                  {"dropped_slow", i.dropped_slow},
                                  {"filtered_out", i.filtered_out},
                                  {"buffered_bytes", i.buffered_size}});
            }
            return Reply::success(std::move(rows));
          });
}

}  // namespace qswitch::tools
