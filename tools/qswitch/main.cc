// tools/qswitch/main.cc: the qswitch program. "qswitch ctl ..." is the control client (ctl.cc),
// "qswitch exec ..." runs a guest on a running switch (exec.cc). Otherwise: parses the command
// line (options.h) on top of the lab file it names, if any (--config, lab_file.h); for --check
// prints the resolved configuration, each [[guest]] with its join line (join_lines.h), and
// exits; else starts the daemon (switchd.h: all or
// nothing, exit status 1 with a message on the first failure), prints how a guest joins, then
// runs until SIGINT/SIGTERM (SIGHUP, like `qswitch ctl reload`, applies the lab file again).
// Exit status: 0 ok (--check: the configuration is valid), 1 start-up failure, 2 usage error
// (an invalid command line or lab file).
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "tools/qswitch/client/ctl.h"
#include "tools/qswitch/client/exec.h"
#include "tools/qswitch/config/lab_file.h"
#include "tools/qswitch/config/options.h"
#include "tools/qswitch/join_lines.h"
#include "tools/qswitch/switchd.h"

int main(int argc, char** argv) {
  using namespace qswitch;
  if (argc >= 2 && std::string(argv[1]) == "ctl") return tools::run_ctl(argc - 1, argv + 1);
  if (argc >= 2 && std::string(argv[1]) == "exec") return tools::run_exec(argc - 1, argv + 1);
  tools::LabFileResult parsed = tools::parse_configuration(argc, argv);
  if (!parsed.lab) {
    std::fprintf(stderr, "qswitch: %s\n", parsed.error.c_str());
    return 2;
  }
  const tools::Options options = parsed.lab->options;
  if (options.help) {
    std::fputs(tools::usage_text(), stdout);
    return 0;
  }
  if (options.version) {
    std::printf("qswitch %s\n", qswitch::kVersion);
    return 0;
  }
  if (options.check) {
    std::vector<std::string> joins;
    for (const tools::LabGuest& g : parsed.lab->guests) {
      joins.push_back(tools::lab_guest_join_line(*parsed.lab, g));
    }
    std::fputs(tools::format_lab_file(*parsed.lab, joins).c_str(), stdout);
    return 0;
  }
  std::string error;
  // The command line is kept: `ctl reload` and SIGHUP parse it again (the --config file anew).
  std::vector<std::string> args(argv, argv + argc);
  const std::unique_ptr<tools::Switchd> daemon =
      tools::Switchd::create(std::move(*parsed.lab), std::move(args), error);
  if (!daemon) {
    std::fprintf(stderr, "qswitch: %s\n", error.c_str());
    return 1;
  }
  daemon->print_join_lines(stdout);
  daemon->run();
  return 0;
}
