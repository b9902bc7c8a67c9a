// The email action (issue #7) through the real binary against a real SMTP server
// (tests/support/smtp_sink.py, python3-aiosmtpd on 127.0.0.1): headers and bodies with
// templates, the seeds' zap shape, multipart HTML, UTF-8 subjects, every retry rule, AUTH
// with the password from the config, and a missing smtp_url.
#include <algorithm>
#include <set>
#include <thread>

#include <fstream>

#include <catch2/catch.hpp>

#include "api_helpers.hpp"
#include "smtp_sink.hpp"
#include "zapd_process.hpp"

using namespace zapd::test;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> args(const std::string& smtp_url, std::vector<std::string> extra = {}) {
  std::vector<std::string> a = k_fast_hashing;
  std::vector<std::string> sets = {"worker.retry_base_ms=50", "worker.max_attempts=3", "hooks.free_zap_rate=0",
                                   "hooks.free_user_rate=0", "email.from=zapd@example.com"};
  if (!smtp_url.empty()) sets.push_back("email.smtp_url=" + smtp_url);
  for (const auto& s : sets) {
    a.push_back("--set");
    a.push_back(s);
  }
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

json email_step(json meta, const std::string& id = "email") { return {{"availableActionId", id}, {"actionMetadata", meta}}; }

const char* const k_comment = k_comment_body;

// Every line break of `raw` is CRLF.
bool crlf_only(const std::string& raw) {
  for (std::size_t i = 0; i < raw.size(); ++i)
    if (raw[i] == '\n' && (i == 0 || raw[i - 1] != '\r')) return false;
  return true;
}

// The header block of a raw message.
std::string header_block(const std::string& raw) { return raw.substr(0, raw.find("\r\n\r\n")); }

// Signs up, makes a zap with one email step to the trigger's address, fires it, waits.
json send_one(const zapd_process& z) {
  auto a = sign_up(z, "ada@example.com");
  auto zap = make_zap(z, a, json::array({email_step({{"to", "{{comment.email}}"}, {"body", "x"}})}));
  return wait_final(z, a, fire(z, a, zap));
}

}  // namespace

TEST_CASE("email: the message arrives with its headers and the body filled from the trigger") {
  smtp_sink sink;
  zapd_process z(args(sink.url()));
  auto a = sign_up(z, "ada@example.com");
  auto zap = make_zap(z, a,
                      json::array({email_step({{"to", "{{comment.email}}, second@example.com"},
                                               {"cc", json::array({"cc@example.com"})},
                                               {"bcc", "hidden@example.com"},
                                               {"replyTo", "support@example.com"},
                                               {"subject", "New comment from {{comment.name}}"},
                                               {"body", "Hello {{comment.name}},\nsomeone wrote.\n.\nA line starting with a dot."}})}));
  auto run_id = fire(z, a, zap);
  auto run = wait_final(z, a, run_id);
  INFO(run.dump(2));
  REQUIRE(run["status"] == "succeeded");

  auto msgs = sink.wait_for(1);
  REQUIRE(msgs.size() == 1);
  const json& m = msgs[0];
  INFO(m.dump(2));
  CHECK(m["from"] == "zapd@example.com");
  CHECK(m["rcpts"] == json::array({"ada@example.com", "second@example.com", "cc@example.com", "hidden@example.com"}));
  CHECK(m["subject"] == "New comment from Ada");
  CHECK(m["headers"]["From"] == "zapd@example.com");
  CHECK(m["headers"]["To"] == "ada@example.com, second@example.com");
  CHECK(m["headers"]["Cc"] == "cc@example.com");
  CHECK(m["headers"]["Reply-To"] == "support@example.com");
  CHECK(m["headers"]["Message-ID"] == "<" + run_id + ".1@zapd>");
  CHECK(m["headers"]["MIME-Version"] == "1.0");
  CHECK_THAT(m["headers"]["Date"].get<std::string>(), Catch::Matches(R"([A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000)"));
  CHECK(m["contentType"] == "text/plain");
  const std::string raw = m["raw"];
  CHECK(raw.find("hidden@example.com") == std::string::npos);  // Bcc: envelope only
  CHECK(raw.find("Bcc") == std::string::npos);
  CHECK(crlf_only(raw));
  std::string text = m["text"];
  text.erase(std::remove(text.begin(), text.end(), '\r'), text.end());
  CHECK(text == "Hello Ada,\nsomeone wrote.\n.\nA line starting with a dot.\n");

  const json& step = run["steps"][0];
  CHECK(step["attempts"] == 1);
  CHECK(step["output"]["messageId"] == "<" + run_id + ".1@zapd>");
  CHECK(step["output"]["accepted"].size() == 4);
  CHECK_THAT(step["output"]["reply"].get<std::string>(), Catch::StartsWith("250"));
}

TEST_CASE("email: long lines, trailing spaces, '=' and dots survive quoted-printable, over one connection") {
  smtp_sink sink;
  zapd_process z(args(sink.url()));
  auto a = sign_up(z, "ada@example.com");
  const std::string long_line = std::string(180, 'x') + " = " + std::string(100, '=') + "end";
  const std::string body = long_line + "\ntrailing spaces   \n\ttab first\n.\n..two dots\r\nCRLF line\n{{n}}";
  auto zap = make_zap(z, a, json::array({email_step({{"to", json::array({"{{comment.email}}"})}, {"subject", "n={{n}}"}, {"body", body}})}));
  std::vector<std::string> runs;
  for (int i = 1; i <= 3; ++i) runs.push_back(fire(z, a, zap, R"({"comment":{"email":"ada@example.com"},"n":)" + std::to_string(i) + "}"));
  for (const auto& id : runs) {
    auto run = wait_final(z, a, id);
    INFO(run.dump(2));
    CHECK(run["status"] == "succeeded");
  }
  auto msgs = sink.wait_for(3);
  REQUIRE(msgs.size() == 3);
  std::set<std::string> subjects;
  for (const auto& m : msgs) {
    INFO(m.dump(2));
    subjects.insert(m["subject"].get<std::string>());
    std::string text = m["text"];
    text.erase(std::remove(text.begin(), text.end(), '\r'), text.end());
    const std::string n = m["subject"].get<std::string>().substr(2);
    CHECK(text == long_line + "\ntrailing spaces   \n\ttab first\n.\n..two dots\nCRLF line\n" + n + "\n");
    const std::string raw = m["raw"];
    CHECK(crlf_only(raw));
    for (std::size_t start = 0, end; start < raw.size(); start = end + 2) {
      end = raw.find("\r\n", start);
      if (end == std::string::npos) end = raw.size();
      CHECK(end - start <= 78);
    }
  }
  CHECK(subjects == std::set<std::string>{"n=1", "n=2", "n=3"});
}

TEST_CASE("email: the seeds' zap shape works as is, subject from the zap's name") {
  smtp_sink sink;
  zapd_process z(args(sink.url()));
  auto a = sign_up(z, "ada@example.com");
  auto zap = make_zap(z, a, json::array({email_step({{"email", "{comment.email}"}, {"body", "Hi {comment.name}"}}, "send-email")}),
                      "Comment notifier");
  auto run = wait_final(z, a, fire(z, a, zap));
  INFO(run.dump(2));
  REQUIRE(run["status"] == "succeeded");
  auto msgs = sink.wait_for(1);
  REQUIRE(msgs.size() == 1);
  CHECK(msgs[0]["rcpts"] == json::array({"ada@example.com"}));
  CHECK(msgs[0]["headers"]["To"] == "ada@example.com");
  CHECK(msgs[0]["subject"] == "Comment notifier");
  CHECK_THAT(msgs[0]["text"].get<std::string>(), Catch::StartsWith("Hi Ada"));
}

TEST_CASE("email: html makes a multipart/alternative message") {
  smtp_sink sink;
  zapd_process z(args(sink.url()));
  auto a = sign_up(z, "ada@example.com");
  auto zap = make_zap(z, a,
                      json::array({email_step({{"to", "{{comment.email}}"},
                                               {"subject", "Hi"},
                                               {"body", "Hi {{comment.name}}"},
                                               {"html", "<p>Hi <b>{{comment.name}}</b> &amp; welcome</p>"}})}));
  auto run = wait_final(z, a, fire(z, a, zap));
  INFO(run.dump(2));
  REQUIRE(run["status"] == "succeeded");
  auto msgs = sink.wait_for(1);
  REQUIRE(msgs.size() == 1);
  INFO(msgs[0].dump(2));
  CHECK(msgs[0]["contentType"] == "multipart/alternative");
  CHECK_THAT(msgs[0]["text"].get<std::string>(), Catch::StartsWith("Hi Ada"));
  CHECK_THAT(msgs[0]["html"].get<std::string>(), Catch::StartsWith("<p>Hi <b>Ada</b> &amp; welcome</p>"));
  CHECK(crlf_only(msgs[0]["raw"]));
}

TEST_CASE("email: a non-ASCII subject is sent as encoded-words and decodes back") {
  smtp_sink sink;
  zapd_process z(args(sink.url()));
  auto a = sign_up(z, "ada@example.com");
  const std::string subject = "Grüße aus Zürich — ✓ naïve café, a subject long enough to need several encoded words: {{comment.name}}";
  auto zap = make_zap(z, a, json::array({email_step({{"to", "{{comment.email}}"}, {"subject", subject}, {"body", "Ünïcödé body ✓"}})}));
  auto run = wait_final(z, a, fire(z, a, zap));
  INFO(run.dump(2));
  REQUIRE(run["status"] == "succeeded");
  auto msgs = sink.wait_for(1);
  REQUIRE(msgs.size() == 1);
  INFO(msgs[0].dump(2));
  CHECK(msgs[0]["subject"] == "Grüße aus Zürich — ✓ naïve café, a subject long enough to need several encoded words: Ada");
  CHECK_THAT(msgs[0]["text"].get<std::string>(), Catch::StartsWith("Ünïcödé body ✓"));
  const std::string headers = header_block(msgs[0]["raw"]);
  CHECK(headers.find("=?UTF-8?B?") != std::string::npos);
  CHECK(std::all_of(headers.begin(), headers.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; }));
  for (std::size_t start = 0, end; start < headers.size(); start = end + 2) {  // folded: no header line over 78
    end = headers.find("\r\n", start);
    if (end == std::string::npos) end = headers.size();
    CHECK(end - start <= 78);
  }
}

TEST_CASE("email: with the SMTP server down the step is retried") {
  std::string dead_url;
  {
    smtp_sink gone;  // a port that just had a listener and now has none
    dead_url = gone.url();
  }
  zapd_process z(args(dead_url, {"--set", "worker.max_attempts=2"}));
  auto a = sign_up(z, "ada@example.com");
  auto zap = make_zap(z, a, json::array({email_step({{"to", "{{comment.email}}"}, {"body", "x"}})}));
  auto run = wait_final(z, a, fire(z, a, zap));
  INFO(run.dump(2));
  CHECK(run["status"] == "failed");
  CHECK(run["steps"][0]["attempts"] == 2);
  CHECK_THAT(run["steps"][0]["error"].get<std::string>(), Catch::Contains("gave up after 2 attempts"));
}

TEST_CASE("email: a 4xx reply is retried, a 550 reply fails at once") {
  smtp_sink sink({.reject = {"nobody@example.com"}, .defer = {"busy@example.com"}});
  zapd_process z(args(sink.url(), {"--set", "worker.max_attempts=2"}));
  auto a = sign_up(z, "ada@example.com");
  SECTION("550") {
    auto zap = make_zap(z, a, json::array({email_step({{"to", "nobody@example.com"}, {"body", "x"}})}));
    auto run = wait_final(z, a, fire(z, a, zap));
    INFO(run.dump(2));
    CHECK(run["status"] == "failed");
    CHECK(run["steps"][0]["attempts"] == 1);
    CHECK_THAT(run["steps"][0]["error"].get<std::string>(), Catch::Contains("550"));
    CHECK(run["steps"][0]["output"]["smtpCode"] == 550);
  }
  SECTION("451") {
    auto zap = make_zap(z, a, json::array({email_step({{"to", "busy@example.com"}, {"body", "x"}})}));
    auto run = wait_final(z, a, fire(z, a, zap));
    INFO(run.dump(2));
    CHECK(run["status"] == "failed");
    CHECK(run["steps"][0]["attempts"] == 2);
    CHECK_THAT(run["steps"][0]["error"].get<std::string>(), Catch::Contains("451"));
  }
  CHECK(sink.messages().empty());
}

TEST_CASE("email: AUTH with the password from the config, and a wrong one fails") {
  smtp_sink sink({.auth = "mailer:hunter2-correct"});
  SECTION("right password") {
    zapd_process z(args(sink.url(), {"--set", "email.username=mailer", "--set", "email.password=hunter2-correct"}));
    auto run = send_one(z);
    INFO(run.dump(2));
    CHECK(run["status"] == "succeeded");
    auto msgs = sink.wait_for(1);
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0]["login"] == "mailer");
  }
  SECTION("password from the environment") {
    zapd_process z(args(sink.url(), {"--set", "email.username=mailer"}), {{"ZAPD_EMAIL_PASSWORD", "hunter2-correct"}});
    auto run = send_one(z);
    INFO(run.dump(2));
    CHECK(run["status"] == "succeeded");
    CHECK(sink.wait_for(1).size() == 1);
  }
  SECTION("password from a file (a Docker or systemd secret)") {
    const std::string file = temp_dir("zapd-smtp-secret") + "/smtp_password";
    {
      std::ofstream(file) << "hunter2-correct\n";
    }
    zapd_process z(args(sink.url(), {"--set", "email.username=mailer", "--set", "email.password_file=" + file}));
    auto run = send_one(z);
    INFO(run.dump(2));
    CHECK(run["status"] == "succeeded");
    CHECK(sink.wait_for(1).size() == 1);
    auto missing = run_zapd({"--listen", "127.0.0.1:0", "--data-dir", temp_dir("zapd-smtp-missing") + "/data", "--set",
                             "email.password_file=/nonexistent/pw", "serve"});
    CHECK(missing.exit_code == 2);
    CHECK_THAT(missing.err, Catch::Contains("email.password_file"));
  }
  SECTION("wrong password") {
    zapd_process z(args(sink.url(), {"--set", "email.username=mailer", "--set", "email.password=wrong"}));
    auto run = send_one(z);
    INFO(run.dump(2));
    CHECK(run["status"] == "failed");
    CHECK(run["steps"][0]["attempts"] == 1);
    CHECK_THAT(run["steps"][0]["error"].get<std::string>(), Catch::Contains("authentication failed"));
    CHECK(run["steps"][0]["error"].get<std::string>().find("wrong") == std::string::npos);
    CHECK(sink.messages().empty());
  }
  SECTION("no credentials: the server's 530 is permanent") {
    zapd_process z(args(sink.url()));
    auto run = send_one(z);
    INFO(run.dump(2));
    CHECK(run["status"] == "failed");
    CHECK(run["steps"][0]["attempts"] == 1);
  }
}

TEST_CASE("email: an address rendered from a template is checked at send time") {
  smtp_sink sink;
  zapd_process z(args(sink.url()));
  auto a = sign_up(z, "ada@example.com");
  auto zap = make_zap(z, a, json::array({email_step({{"to", "{{comment.email}}"}, {"body", "x"}})}));
  auto run = wait_final(z, a, fire(z, a, zap, R"({"comment":{"email":"not an address"}})"));
  INFO(run.dump(2));
  CHECK(run["status"] == "failed");
  CHECK(run["steps"][0]["attempts"] == 1);
  CHECK_THAT(run["steps"][0]["error"].get<std::string>(), Catch::Contains("to: 'not an address' is not an email address"));
  CHECK(sink.messages().empty());
}

TEST_CASE("email: a bad sender, reply-to or an empty recipient fails the step at once, naming the field") {
  smtp_sink sink;
  struct scenario {
    const char* name;
    json fields;
    const char* error;
  };
  const std::vector<scenario> table = {
      {"from rendered invalid", {{"to", "bob@example.com"}, {"from", "{{comment.email}}"}}, "from: 'not an address' is not an email address"},
      {"replyTo rendered invalid", {{"to", "bob@example.com"}, {"replyTo", "{{comment.email}}"}}, "replyTo: 'not an address' is not an email address"},
      {"to rendered empty", {{"to", "{{comment.missing}}"}}, "to: no recipient"},
  };
  zapd_process z(args(sink.url()));
  auto a = sign_up(z, "ada@example.com");
  for (const auto& sc : table) {
    INFO(sc.name);
    json fields = sc.fields;
    fields["body"] = "x";
    auto zap = make_zap(z, a, json::array({email_step(fields)}));
    auto run = wait_final(z, a, fire(z, a, zap, R"({"comment":{"email":"not an address"}})"));
    INFO(run.dump(2));
    CHECK(run["status"] == "failed");
    CHECK(run["steps"][0]["attempts"] == 1);
    CHECK_THAT(run["steps"][0]["error"].get<std::string>(), Catch::Contains(sc.error));
  }
  // No `from` on the action and no email.from: the step says where a sender comes from.
  zapd_process no_from(args(sink.url(), {"--set", "email.from="}));
  auto b = sign_up(no_from, "bob@example.com");
  auto zap = make_zap(no_from, b, json::array({email_step({{"to", "bob@example.com"}, {"body", "x"}})}));
  auto run = wait_final(no_from, b, fire(no_from, b, zap));
  INFO(run.dump(2));
  CHECK(run["status"] == "failed");
  CHECK_THAT(run["steps"][0]["error"].get<std::string>(), Catch::Contains("no sender: give the action a `from` or set email.from"));
  CHECK(sink.messages().empty());
}

TEST_CASE("email: a literal invalid address is refused when the zap is saved") {
  zapd_process z(args(""));
  auto a = sign_up(z, "ada@example.com");
  auto r = z.request("POST", "/api/v1/zap",
                     json{{"availableTriggerId", "webhook"},
                          {"triggerMetadata", json::object()},
                          {"actions", json::array({email_step({{"to", "nope"}, {"body", "x"}})})}}
                         .dump(),
                     bearer(a.token));
  CHECK(r.status == 400);
}

TEST_CASE("email: without email.smtp_url the step fails saying what to set, and config check warns") {
  zapd_process z(args(""));
  auto a = sign_up(z, "ada@example.com");
  auto zap = make_zap(z, a, json::array({email_step({{"to", "{{comment.email}}"}, {"body", "x"}})}));
  auto run = wait_final(z, a, fire(z, a, zap));
  INFO(run.dump(2));
  CHECK(run["status"] == "failed");
  CHECK(run["steps"][0]["attempts"] == 1);
  CHECK_THAT(run["steps"][0]["error"].get<std::string>(), Catch::Contains("email.smtp_url") && Catch::Contains("ZAPD_EMAIL_SMTP_URL"));

  auto check = run_zapd({"--set", "email.password=very-secret-pw", "config", "check"});
  CHECK(check.exit_code == 0);
  CHECK_THAT(check.err, Catch::Contains("email.smtp_url"));
  CHECK(check.out.find("very-secret-pw") == std::string::npos);
  auto ok = run_zapd({"--set", "email.smtp_url=smtp://127.0.0.1:25", "config", "check"});
  CHECK(ok.exit_code == 0);
  CHECK(ok.err.find("email.smtp_url") == std::string::npos);
  auto bad = run_zapd({"--set", "email.smtp_url=http://mail.example.com", "config", "check"});
  CHECK(bad.exit_code != 0);
}
