// tests/tools/control_api_test.cc: the JSON control protocol: every malformed request is an
// error reply that says what is accepted, "id" is echoed, and a bad request never reaches a
// handler (so it changes nothing).
#include "tools/qswitch/services/control_api.h"

#include <gtest/gtest.h>

#include <string>

namespace qswitch::tools {
namespace {

using json = nlohmann::json;

json reply_of(ControlApi& api, std::string_view line) {
  const std::string text = api.handle_line(line);
  EXPECT_EQ(text.find('\n'), std::string::npos) << "a reply is one line: " << text;
  json j = json::parse(text, nullptr, false);
  EXPECT_TRUE(j.is_object()) << text;
  return j;
}

std::string error_of(const json& reply) {
  EXPECT_EQ(reply.value("ok", true), false) << reply.dump();
  return reply.value("error", std::string());
}

class ControlApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    api_.add("echo", "returns its args", [this](const json& args) {
      ++calls_;
      return Reply::success(args);
    });
    api_.add("set", "takes a string \"spec\"", [this](const json& args) {
      std::string error, spec;
      if (!check_arg_names(args, {"spec"}, "set", error) ||
          !string_arg(args, "spec", "set", spec, error)) {
        return Reply::failure(error);
      }
      ++calls_;
      value_ = spec;
      return Reply::success(spec);
    });
  }
  ControlApi api_{"9.8.7"};
  int calls_ = 0;
  std::string value_;
};

TEST_F(ControlApiTest, AnswersAGoodRequestAndEchoesTheId) {
  const json r = reply_of(api_, R"({"cmd":"echo","args":{"a":1},"id":"req-7"})");
  EXPECT_EQ(r["ok"], true);
  EXPECT_EQ(r["result"], json({{"a", 1}}));
  EXPECT_EQ(r["id"], "req-7");
  EXPECT_EQ(calls_, 1);
}

TEST_F(ControlApiTest, EchoesAnyIdValueEvenOnErrors) {
  const json r = reply_of(api_, R"({"cmd":"nope","id":{"n":[1,2]}})");
  EXPECT_EQ(r["ok"], false);
  EXPECT_EQ(r["id"], json({{"n", {1, 2}}}));
  const json n = reply_of(api_, R"({"cmd":"echo","id":42})");
  EXPECT_EQ(n["id"], 42);
}

TEST_F(ControlApiTest, NoIdInRequestMeansNoIdInReply) {
  const json r = reply_of(api_, R"({"cmd":"echo"})");
  EXPECT_EQ(r["ok"], true);
  EXPECT_FALSE(r.contains("id"));
}

TEST_F(ControlApiTest, MissingArgsIsAnEmptyObject) {
  const json r = reply_of(api_, R"({"cmd":"echo"})");
  EXPECT_EQ(r["result"], json::object());
}

TEST_F(ControlApiTest, MalformedJsonIsAnErrorReply) {
  for (const char* line : {"{", "{\"cmd\":", "hello", "{\"cmd\":\"echo\"}}", "\xff\xfe"}) {
    const std::string e = error_of(reply_of(api_, line));
    EXPECT_NE(e.find("malformed JSON"), std::string::npos) << line << ": " << e;
    EXPECT_NE(e.find("\"cmd\""), std::string::npos) << "says what is accepted: " << e;
  }
  EXPECT_NE(error_of(reply_of(api_, "")).find("empty request"), std::string::npos);
  EXPECT_EQ(calls_, 0);
}

TEST_F(ControlApiTest, NonObjectRequestIsAnErrorReply) {
  for (const char* line : {"[1,2]", "\"echo\"", "42", "null", "true"}) {
    const std::string e = error_of(reply_of(api_, line));
    EXPECT_NE(e.find("not an object"), std::string::npos) << line << ": " << e;
  }
  EXPECT_EQ(calls_, 0);
}

TEST_F(ControlApiTest, MissingCmdIsAnErrorReply) {
  const json r = reply_of(api_, R"({"args":{},"id":3})");
  EXPECT_NE(error_of(r).find("missing \"cmd\""), std::string::npos) << r.dump();
  EXPECT_EQ(r["id"], 3);
}

TEST_F(ControlApiTest, CmdThatIsNotAStringIsAnErrorReply) {
  const std::string e = error_of(reply_of(api_, R"({"cmd":7})"));
  EXPECT_NE(e.find("\"cmd\" is a JSON number"), std::string::npos) << e;
}

TEST_F(ControlApiTest, UnknownCmdIsNamedAndCommandsListed) {
  const std::string e = error_of(reply_of(api_, R"({"cmd":"frobnicate"})"));
  EXPECT_NE(e.find("'frobnicate'"), std::string::npos) << e;
  for (const char* name : {"echo", "help", "set", "version"}) {
    EXPECT_NE(e.find(name), std::string::npos) << name << " not listed: " << e;
  }
}

TEST_F(ControlApiTest, ArgsOfTheWrongTypeIsAnErrorReply) {
  for (const char* line : {R"({"cmd":"echo","args":[1]})", R"({"cmd":"echo","args":"x"})",
                           R"({"cmd":"echo","args":null})"}) {
    const std::string e = error_of(reply_of(api_, line));
    EXPECT_NE(e.find("\"args\" is a JSON"), std::string::npos) << line << ": " << e;
  }
  EXPECT_EQ(calls_, 0);
}

TEST_F(ControlApiTest, UnknownRequestFieldIsAnErrorReply) {
  const std::string e = error_of(reply_of(api_, R"({"cmd":"echo","arg":{}})"));
  EXPECT_NE(e.find("'arg'"), std::string::npos) << e;
  EXPECT_EQ(calls_, 0);
}

TEST_F(ControlApiTest, BadArgumentsChangeNothing) {
  const std::string missing = error_of(reply_of(api_, R"({"cmd":"set","args":{}})"));
  EXPECT_NE(missing.find("\"spec\""), std::string::npos) << missing;
  const std::string wrong = error_of(reply_of(api_, R"({"cmd":"set","args":{"spec":5}})"));
  EXPECT_NE(wrong.find("number"), std::string::npos) << wrong;
  const std::string extra =
      error_of(reply_of(api_, R"({"cmd":"set","args":{"spec":"a","sepc":"b"}})"));
  EXPECT_NE(extra.find("'sepc'"), std::string::npos) << extra;
  EXPECT_EQ(calls_, 0);
  EXPECT_TRUE(value_.empty());
  EXPECT_EQ(reply_of(api_, R"({"cmd":"set","args":{"spec":"a"}})")["ok"], true);
  EXPECT_EQ(value_, "a");
}

TEST_F(ControlApiTest, HelpListsEveryCommandWithItsSummary) {
  const json r = reply_of(api_, R"({"cmd":"help"})");
  ASSERT_EQ(r["ok"], true) << r.dump();
  ASSERT_TRUE(r["result"].is_array());
  std::vector<std::string> names;
  for (const json& row : r["result"]) {
    names.push_back(row["name"].get<std::string>());
    EXPECT_FALSE(row["summary"].get<std::string>().empty()) << row.dump();
  }
  EXPECT_EQ(names, (std::vector<std::string>{"echo", "help", "set", "version"}));
}

TEST_F(ControlApiTest, VersionSaysWhichQswitch) {
  const json r = reply_of(api_, R"({"cmd":"version"})");
  EXPECT_EQ(r["result"]["version"], "9.8.7");
  EXPECT_EQ(r["result"]["name"], "qswitch");
}

TEST_F(ControlApiTest, HandlerExceptionBecomesAnErrorReply) {
  api_.add("broken", "reads a missing key the throwing way",
           [](const json& args) { return Reply::success(args.at("missing")); });
  const std::string e = error_of(reply_of(api_, R"({"cmd":"broken"})"));
  EXPECT_NE(e.find("internal error in 'broken'"), std::string::npos) << e;
}

TEST_F(ControlApiTest, TooLongAndBusyRepliesAreProtocolErrors) {
  json t = json::parse(api_.too_long_reply(65536), nullptr, false);
  EXPECT_EQ(t["ok"], false);
  const std::string te = t["error"].get<std::string>();
  EXPECT_EQ(te.rfind("request too long:", 0), 0u) << te;
  EXPECT_NE(te.find("limit 65536 bytes"), std::string::npos) << te;
  json b = json::parse(api_.busy_reply(64), nullptr, false);
  EXPECT_EQ(b["ok"], false);
  EXPECT_NE(b["error"].get<std::string>().find("64"), std::string::npos);
}

TEST_F(ControlApiTest, InvalidUtf8InAResultIsReplacedNotThrown) {
  api_.add("bytes", "returns bad UTF-8", [](const json&) {
    return Reply::success(
        std::string("a\xff"
                    "b"));
  });
  const json r = reply_of(api_, R"({"cmd":"bytes"})");
  EXPECT_EQ(r["ok"], true);
  EXPECT_TRUE(r["result"].is_string());
}

// Found by tests/fuzz/control_line_fuzz: nlohmann's parser is iterative, but copying a value
// (the echoed "id") and dumping it recurse once per level, so a request line nested a few ten
// thousand levels deep (well within the 64 KiB line limit) overflowed the stack and killed the
// switch. Such a request is now refused before anything recurses on it.
TEST_F(ControlApiTest, DeeplyNestedRequestIsAnErrorReplyNotACrash) {
  const size_t depth = 32000;  // fits the control server's 65536-byte line limit
  const std::string deep = std::string(depth, '[') + std::string(depth, ']');
  std::string deep_objects;  // {"a":{"a":{"a":... never closed
  for (size_t i = 0; i < depth; ++i) deep_objects += R"({"a":)";
  for (const std::string& line :
       {R"({"cmd":"echo","id":)" + deep + "}", R"({"cmd":"echo","args":{"a":)" + deep + "}}",
        R"({"id":)" + deep + "}", deep, std::string(100000, '['), deep_objects}) {
    const json r = reply_of(api_, line);
    const std::string e = error_of(r);
    EXPECT_NE(e.find("nested"), std::string::npos) << e;
    EXPECT_FALSE(r.contains("id"));
  }
  EXPECT_EQ(calls_, 0);
}

TEST_F(ControlApiTest, ModeratelyNestedValuesStillWork) {
  const std::string nested = std::string(20, '[') + "1" + std::string(20, ']');
  const json r =
      reply_of(api_, R"({"cmd":"echo","args":{"a":)" + nested + R"(},"id":)" + nested + "}");
  EXPECT_EQ(r["ok"], true);
  EXPECT_EQ(r["id"], json::parse(nested));
  EXPECT_EQ(r["result"]["a"], json::parse(nested));
}

}  // namespace
}  // namespace qswitch::tools
