// The `email` action's executor: one SMTP delivery per attempt, through libcurl's SMTP
// support on the outbound driver's thread (no thread of its own, no hand-written SMTP).
//
// SSRF: the SMTP URL comes from the operator's config ([email] smtp_url), never from a zap,
// so unlike the http action no `outbound::policy` check applies: users choose recipients and
// content, not where zapd connects to.
#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <memory>
#include <set>
#include <vector>

#include "zapd/actions/executor.hpp"
#include "zapd/core/json.hpp"
#include "zapd/actions/spec.hpp"
#include "zapd/core/crypto.hpp"
#include "zapd/core/ids.hpp"
#include "zapd/outbound/curl_lazy.hpp"
#include "zapd/outbound/driver.hpp"

namespace zapd::actions {
namespace {

using json = nlohmann::json;


bool has_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// A rendered address field (a string, comma-separated, or a list of such strings) -> its
// addresses, in order. An address that is not one is an error naming the field.
result<std::vector<std::string>> addresses(const json& v, std::string_view field) {
  std::vector<std::string> out;
  auto add_all = [&](const std::string& s) -> status {
    std::size_t start = 0;
    while (start <= s.size()) {
      auto end = s.find_first_of(",;", start);
      if (end == std::string::npos) end = s.size();
      std::string a(trim(std::string_view(s).substr(start, end - start)));
      if (!a.empty()) {
        if (has_control(a) || !looks_like_email(a))
          return make_error(errc::invalid_argument, fmt::format("{}: '{}' is not an email address", field, a));
        out.push_back(std::move(a));
      }
      start = end + 1;
    }
    return {};
  };
  if (v.is_string()) {
    if (auto st = add_all(v.get<std::string>()); !st) return std::move(st).err();
  } else if (v.is_array()) {
    for (const auto& item : v)
      if (item.is_string())
        if (auto st = add_all(item.get<std::string>()); !st) return std::move(st).err();
  }
  return out;
}

// RFC 5322 date, always UTC (no locale: strftime's %a/%b would follow LC_TIME).
std::string rfc5322_date(std::time_t t) {
  static const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{}, {:02} {} {} {:02}:{:02}:{:02} +0000", days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
                     tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

// A header value as RFC 2047 encoded-words (=?UTF-8?B?...?=) when it is not plain short
// ASCII: words of at most 42 bytes, never splitting a UTF-8 sequence, folded with CRLF SP,
// so every line stays within 78 characters.
std::string encode_header_text(const std::string& s) {
  const bool plain = s.size() <= 900 && std::all_of(s.begin(), s.end(), [](char c) {
                       auto u = static_cast<unsigned char>(c);
                       return u >= 0x20 && u < 0x7f;
                     });
  if (plain) return s;
  std::string out;
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t n = std::min<std::size_t>(42, s.size() - i);  // "Subject: " + word <= 78
    // Back up to a UTF-8 sequence start so each word decodes on its own.
    while (n > 1 && i + n < s.size() && (static_cast<unsigned char>(s[i + n]) & 0xC0) == 0x80) --n;
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + base64_encode(s.substr(i, n)) + "?=";
    i += n;
  }
  return out;
}

// An address list header value, folded before a line would pass 78 characters.
std::string address_header(std::string_view name, const std::vector<std::string>& list) {
  std::string out;
  std::size_t line = name.size() + 2;
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (i > 0) {
      out += ",";
      ++line;
      if (line + 1 + list[i].size() > 78) {
        out += "\r\n";
        line = 0;
      }
      out += " ";
      ++line;
    }
    out += list[i];
    line += list[i].size();
  }
  return out;
}

// Quoted-printable (RFC 2045) with CRLF hard line breaks (any of CRLF, LF, CR in the input)
// and soft breaks keeping encoded lines at most 76 characters.
std::string quoted_printable(std::string_view in) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  std::size_t col = 0;
  auto put = [&](std::string_view tok) {
    if (col + tok.size() > 75) {  // leave room for the soft break's '='
      out += "=\r\n";
      col = 0;
    }
    out += tok;
    col += tok.size();
  };
  for (std::size_t i = 0; i < in.size(); ++i) {
    const auto c = static_cast<unsigned char>(in[i]);
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < in.size() && in[i + 1] == '\n') ++i;
      out += "\r\n";
      col = 0;
      continue;
    }
    const bool line_end = i + 1 == in.size() || in[i + 1] == '\r' || in[i + 1] == '\n';
    const bool literal = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !line_end);
    if (literal) {
      char ch = static_cast<char>(c);
      put(std::string_view(&ch, 1));
    } else {
      const char enc[3] = {'=', hex[c >> 4], hex[c & 15]};
      put(std::string_view(enc, 3));
    }
  }
  return out;
}

std::string text_part(std::string_view content_type, std::string_view body) {
  return fmt::format("Content-Type: {}; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{}\r\n",
                     content_type, quoted_printable(body));
}

// Everything one transfer needs, alive until the driver's `done` (options point into it).
struct transfer {
  CURL* easy = nullptr;
  curl_slist* rcpts = nullptr;
  std::string message;
  std::size_t sent = 0;
  std::string last_reply;  // the server's last reply line (QUIT's 221 left out)
  char errbuf[CURL_ERROR_SIZE] = {};
  std::vector<std::string> accepted;
  std::string message_id;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  executor::done_fn done;

  ~transfer() {
    if (easy) curl_easy_cleanup(easy);
    if (rcpts) curl_slist_free_all(rcpts);
  }
};

std::size_t read_message(char* buf, std::size_t size, std::size_t n, void* user) {
  auto* t = static_cast<transfer*>(user);
  const std::size_t len = std::min(size * n, t->message.size() - t->sent);
  std::memcpy(buf, t->message.data() + t->sent, len);
  t->sent += len;
  return len;
}

// Server replies reach the debug callback as CURLINFO_HEADER_IN (needs CURLOPT_VERBOSE). What
// we send (HEADER_OUT: AUTH carries the password) is never looked at.
int on_debug(CURL*, curl_infotype type, char* data, std::size_t size, void* user) {
  if (type != CURLINFO_HEADER_IN) return 0;
  auto* t = static_cast<transfer*>(user);
  std::string line(trim(std::string_view(data, size)));
  if (!line.empty() && !line.starts_with("221")) t->last_reply = line.substr(0, 512);
  return 0;
}

bool permanent_curl_error(CURLcode rc) {
  switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_LOGIN_DENIED:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_AUTH_ERROR:
      return true;
    default:
      return false;  // connection errors, timeouts, resets, aborted at stop: try again later
  }
}

step_result classify(transfer& t, CURLcode rc) {
  step_result res;
  res.duration = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t.started);
  long code = 0;
  curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &code);
  if (rc == CURLE_OK) {
    res.v = verdict::succeeded;
    res.output = {{"accepted", t.accepted}, {"reply", t.last_reply}, {"messageId", t.message_id}};
    return res;
  }
  const std::string detail = t.errbuf[0] ? std::string(t.errbuf) : std::string(curl_easy_strerror(rc));
  res.output = {{"reply", t.last_reply}, {"messageId", t.message_id}, {"smtpCode", code}};
  if (rc == CURLE_LOGIN_DENIED || code == 535) {
    res.v = verdict::failed;
    res.error = fmt::format("SMTP authentication failed (check email.username and email.password): {}",
                            t.last_reply.empty() ? detail : t.last_reply);
  } else if (code >= 500 && code <= 599) {
    res.v = verdict::failed;  // permanent rejection: sending again gets the same answer
    res.error = fmt::format("SMTP server rejected the message: {}", t.last_reply.empty() ? detail : t.last_reply);
  } else if (code >= 400 && code <= 499) {
    res.v = verdict::retry;  // transient (greylisting, mailbox busy, rate limits)
    res.error = fmt::format("SMTP server deferred the message: {}", t.last_reply.empty() ? detail : t.last_reply);
  } else {
    res.v = permanent_curl_error(rc) ? verdict::failed : verdict::retry;
    res.error = fmt::format("SMTP delivery failed: {}", detail);
  }
  return res;
}

step_result fail(std::string error) {
  step_result r;
  r.v = verdict::failed;
  r.error = std::move(error);
  return r;
}

class email_executor final : public executor {
 public:
  email_executor(outbound::driver& d, email_options o) : driver_(d), opts_(std::move(o)) {}

  templates::options render_options(std::string_view, const json&) const override {
    // Every email field is text; the seeds' `{comment.email}` form is honoured in all of
    // them (the templates module applies it only to a field that holds no `{{`).
    templates::options o;
    o.m = templates::mode::text;
    o.legacy_single_brace = true;
    return o;
  }

  void execute(step_request req, done_fn done) override {
    if (opts_.smtp_url.empty())
      return done(fail("email is not configured: set email.smtp_url (env ZAPD_EMAIL_SMTP_URL), e.g. smtp://mail.example.com:587"));
    const json& cfg = req.config;

    const json& to_v = cfg.contains("to") ? cfg["to"] : cfg.contains("email") ? cfg["email"] : json();
    auto to = addresses(to_v, cfg.contains("to") ? "to" : "email");
    if (!to) return done(fail(to.err().message));
    if (to->empty()) return done(fail("to: no recipient (the field rendered empty)"));
    auto cc = addresses(cfg.value("cc", json()), "cc");
    if (!cc) return done(fail(cc.err().message));
    auto bcc = addresses(cfg.value("bcc", json()), "bcc");
    if (!bcc) return done(fail(bcc.err().message));
    std::string from(trim(string_field(cfg, "from")));
    const char* from_field = "from";
    if (from.empty()) {
      from = opts_.from;
      from_field = "email.from";
    }
    if (from.empty()) return done(fail("no sender: give the action a `from` or set email.from (env ZAPD_EMAIL_FROM)"));
    if (has_control(from) || !looks_like_email(from))
      return done(fail(fmt::format("{}: '{}' is not an email address", from_field, from)));
    std::string reply_to(trim(string_field(cfg, "replyTo")));
    if (!reply_to.empty() && (has_control(reply_to) || !looks_like_email(reply_to)))
      return done(fail(fmt::format("replyTo: '{}' is not an email address", reply_to)));

    std::string subject = string_field(cfg, "subject");
    if (trim(subject).empty()) subject = req.zap_name.empty() ? "zapd" : req.zap_name;
    for (auto& c : subject)
      if (c == '\r' || c == '\n' || c == '\t') c = ' ';  // one header line: no injection
    const std::string body = string_field(cfg, "body");
    const std::string html = string_field(cfg, "html");

    auto t = std::make_shared<transfer>();
    t->message_id = fmt::format("<{}.{}@zapd>", req.run_id, req.step_index);
    std::string& m = t->message;
    m += "Date: " + rfc5322_date(std::time(nullptr)) + "\r\n";
    m += "From: " + from + "\r\n";
    m += "To: " + address_header("To", *to) + "\r\n";
    if (!cc->empty()) m += "Cc: " + address_header("Cc", *cc) + "\r\n";  // Bcc: envelope only
    if (!reply_to.empty()) m += "Reply-To: " + reply_to + "\r\n";
    m += "Subject: " + encode_header_text(subject) + "\r\n";
    m += "Message-ID: " + t->message_id + "\r\n";
    m += "Auto-Submitted: auto-generated\r\n";
    m += "MIME-Version: 1.0\r\n";
    if (html.empty()) {
      m += text_part("text/plain", body);
    } else {
      // "=_" never occurs in quoted-printable output, so the boundary cannot clash with a body.
      const std::string boundary = "=_zapd_" + random_boundary();
      m += fmt::format("Content-Type: multipart/alternative; boundary=\"{}\"\r\n\r\n", boundary);
      m += "This is a multipart message in MIME format.\r\n";
      m += "--" + boundary + "\r\n" + text_part("text/plain", body);
      m += "--" + boundary + "\r\n" + text_part("text/html", html);
      m += "--" + boundary + "--\r\n";
    }

    // Loads libcurl on the first email; without it nothing below can work, and a retry will not help.
    if (auto why = outbound::curl_unavailable()) return done(fail(*why));

    std::set<std::string> seen;
    for (const auto* list : {&*to, &*cc, &*bcc})
      for (const auto& a : *list)
        if (seen.insert(a).second) {
          t->accepted.push_back(a);
          t->rcpts = curl_slist_append(t->rcpts, ("<" + a + ">").c_str());
        }

    t->easy = curl_easy_init();
    if (!t->easy || !t->rcpts) {
      step_result r;
      r.v = verdict::retry;
      r.error = "could not set up the SMTP transfer (out of memory)";
      return done(std::move(r));
    }
    std::int64_t timeout = opts_.timeout.count();
    if (auto it = cfg.find("timeoutMs"); it != cfg.end() && it->is_number_integer() && it->get<std::int64_t>() > 0)
      timeout = std::min(timeout, it->get<std::int64_t>());  // the worker's cap (attempt ends before its lease)
    CURL* e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, opts_.smtp_url.c_str());
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    // smtp://: STARTTLS when the server offers it, plain otherwise (a local relay); smtps://
    // is TLS from the first byte.
    if (opts_.smtp_url.starts_with("smtp://")) curl_easy_setopt(e, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_TRY));
    curl_easy_setopt(e, CURLOPT_MAIL_FROM, ("<" + from + ">").c_str());
    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, t->rcpts);
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, read_message);
    curl_easy_setopt(e, CURLOPT_READDATA, t.get());
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(m.size()));
    if (!opts_.username.empty()) {
      curl_easy_setopt(e, CURLOPT_USERNAME, opts_.username.c_str());
      curl_easy_setopt(e, CURLOPT_PASSWORD, opts_.password.c_str());
    }
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout));
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);  // only to hand server replies to on_debug
    curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(e, CURLOPT_DEBUGDATA, t.get());
    t->done = std::move(done);

    // `t` (handle, recipient list, message) lives until the driver calls back.
    auto st = driver_.add(e, [t](CURLcode rc) {
      step_result r = classify(*t, rc);
      auto cb = std::move(t->done);
      cb(std::move(r));
    });
    if (!st) {
      step_result r;
      r.v = verdict::retry;
      r.error = "outbound I/O is stopping: " + st.err().message;
      auto cb = std::move(t->done);
      cb(std::move(r));
    }
  }

 private:
  static std::string random_boundary() { return random_hex(12); }

  outbound::driver& driver_;
  email_options opts_;
};

}  // namespace

std::unique_ptr<executor> make_email_executor(outbound::driver& d, email_options o) {
  return std::make_unique<email_executor>(d, std::move(o));
}

}  // namespace zapd::actions
