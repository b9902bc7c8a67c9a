// zapd's command line: parses flags, loads the config, hands off to `app`.
#include <sqlite3.h>

#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#ifdef ZAPD_JEMALLOC
// jemalloc's control interface (its stable public API; declared here because Debian's
// libjemalloc-dev cannot be co-installed for the arm64 cross build).
extern "C" int mallctl(const char* name, void* oldp, std::size_t* oldlenp, void* newp, std::size_t newlen);
#endif
#include <boost/version.hpp>
#include <fmt/format.h>

#include "zapd/app/app.hpp"
#include "zapd/config/config.hpp"
#include "zapd/core/log.hpp"

#ifndef ZAPD_VERSION
#define ZAPD_VERSION "0.0.0"
#endif

namespace {

using namespace zapd;

constexpr const char* k_global_help = R"(usage: zapd [flags] <command> [args]

commands:
  serve              run the server (applies pending migrations first)
  migrate [up]       apply pending database migrations
  migrate status     list migrations and whether each is applied
  config check       print the effective configuration (secrets masked)
  user create        create an account (works when sign-up is closed)
  user set-password  change an account's password, ending its sessions
  user list          list accounts
  backup FILE        copy the database to FILE, safe while serve runs
  restore FILE       replace the database with a backup (serve must be stopped)
  healthcheck        exit 0 when the running server's /readyz answers 200
  worker             run a worker of a Kafka fleet (queue.backend = kafka; no data dir)
  version            print the version
  help [command]     show help (also: zapd <command> --help)

flags (any command):
  --config FILE      TOML config file (also ZAPD_CONFIG); see config/zapd.toml
  --set KEY=VALUE    set any config key, e.g. --set store.synchronous=normal
  --listen ADDR      same as --set server.listen=ADDR
  --data-dir DIR     same as --set data_dir=DIR
  --log-json         log one JSON object per line (same as --set log.format=json)
  --log-level LEVEL  debug, info, warn or error
  -h, --help         show help

Precedence: defaults < config file < ZAPD_* environment < flags.
Exit codes: 0 ok, 1 runtime failure, 2 bad configuration or usage.
)";

constexpr const char* k_serve_help = R"(usage: zapd serve [flags]

Applies pending migrations, then serves HTTP on server.listen (default 127.0.0.1:8080) with
its data in data_dir (default ./data). SIGINT/SIGTERM stop accepting, let in-flight requests
finish (server.shutdown_grace_ms), flush the store, and exit 0.
)";

constexpr const char* k_worker_help = R"(usage: zapd worker [flags]

A worker of the fleet, for queue.backend = "kafka": consumes step jobs from the Kafka cluster
(kafka.brokers) in the workers' consumer group (kafka.group), executes them (HTTP, email, the
built-in steps) and publishes the results for the primary (`zapd serve`) to record. No data
dir, no SQLite. Needs a copy of the primary's fleet key (kafka.fleet_key_file): a worker with
another key refuses work and exits 2. With worker.listen set it serves /healthz, /readyz and
/metrics there. SIGINT/SIGTERM: stop fetching, let steps in flight finish for
server.shutdown_grace_ms (the rest are redelivered), commit, exit 0. README: "Scaling out".
)";

constexpr const char* k_migrate_help = R"(usage: zapd migrate [up|status] [flags]

  up       apply every pending migration in one transaction (default)
  status   list the migrations compiled into this binary and whether each is applied
)";

constexpr const char* k_config_help = R"(usage: zapd config check [flags]

Loads the configuration exactly as `serve` would and prints the effective value of every
key with where it came from. Secrets are masked. Exits 2 on the first invalid key or value.
)";

constexpr const char* k_user_help = R"(usage: zapd user <create|set-password|list> [flags]

  zapd user create --email E --name N [--plan free|paid]
      Creates an account, validated like sign-up (email, password 8..1024 bytes, name
      1..200 characters). The first account of an installation is its administrator.
      Works whether auth.signup is open or closed.
  zapd user set-password --email E
      Replaces the password and ends every session of the user (API tokens stay valid).
  zapd user list
      Prints every account: id, email, plan, admin, created, name.

The password is read from standard input (its first line) when stdin is not a terminal,
otherwise prompted for twice without echo, e.g.
  printf '%s\n' "$PASSWORD" | zapd user create --email me@example.com --name Me
Exit codes: 0 ok, 1 runtime failure, 2 bad input or usage (e.g. the email is taken).
)";

constexpr const char* k_backup_help = R"~(usage: zapd backup FILE [--force] [flags]

Copies data_dir/zapd.db to FILE while `serve` keeps running (SQLite's online backup API from
one read snapshot: every webhook answered 200 before the backup started is in it). Written to
FILE.tmp (mode 0600) and renamed, so FILE is never half-written; progress on stderr for a
database of more than ~1 MiB, e.g. "backup: 37% (1234/3300 pages)". The result is a single
SQLite file. The keys in data_dir (secrets.key, secret.key) are not in it: copy them once.

  --force   replace FILE if it exists (refused otherwise)

Exit codes: 0 ok, 1 failure, 2 refused (FILE exists, no database in data_dir) or bad usage.
)~";

constexpr const char* k_restore_help = R"~(usage: zapd restore FILE [flags]

Replaces data_dir/zapd.db with the backup FILE. Refuses while a zapd process holds the data
dir (stop `serve` first), and refuses a FILE that fails SQLite's integrity check, is not a
zapd database, or records a migration this zapd does not know (a newer zapd's backup). The
current database (with its -wal/-shm) is kept as zapd.db.before-restore-<UTC time>. Works on
a new, empty data dir too. Start `serve` afterwards; it applies pending migrations.

Exit codes: 0 ok, 1 failure, 2 refused or bad usage.
)~";

constexpr const char* k_healthcheck_help = R"~(usage: zapd healthcheck [--timeout SECONDS] [flags]

GET http://<server.listen>/readyz (0.0.0.0 and :: are asked on 127.0.0.1 and ::1); reads the
same configuration as `serve` (--config, ZAPD_*, --listen). Exits 0 when it answers 200,
otherwise 1 with a one-line reason on stderr (also for a configuration error, so a container
HEALTHCHECK never sees Docker's reserved code 2).

  --timeout SECONDS   how long to wait for the answer (default 3; 0.1 to 60)
)~";

// The allocator serving malloc, for `zapd version`: jemalloc's version only when this thread's
// allocations are counted by it (a link order that let glibc's malloc win would say so).
std::string allocator() {
#ifdef ZAPD_JEMALLOC
  const char* version = nullptr;
  std::size_t len = sizeof version;
  if (mallctl("version", &version, &len, nullptr, 0) != 0 || !version) return "jemalloc ?";
  auto allocated = [] {
    std::uint64_t n = 0;
    std::size_t l = sizeof n;
    return mallctl("thread.allocated", &n, &l, nullptr, 0) == 0 ? n : 0;
  };
  const std::uint64_t before = allocated();
  void* volatile p = std::malloc(1 << 20);
  const std::uint64_t after = allocated();
  std::free(p);
  if (after < before + (1 << 20)) return fmt::format("jemalloc {} linked, but malloc is not jemalloc's", version);
  return fmt::format("jemalloc {}", version);
#else
  return "glibc malloc";
#endif
}

constexpr const char* k_version_help = "usage: zapd version\n\nPrints the version of zapd and of its libraries.\n";

struct cli_args {
  std::vector<std::string> words;  // command and its arguments
  config::sources src;
  bool help = false;
  std::map<std::string, std::string> user_opts;  // --email, --name, --plan of `zapd user`
  bool force = false;                              // `zapd backup --force`
  double timeout_s = 3.0;                          // `zapd healthcheck --timeout`
};

int usage_error(const std::string& msg) {
  fmt::print(stderr, "zapd: {}\nrun 'zapd --help' for usage\n", msg);
  return app::k_exit_usage;
}

std::optional<std::string> parse(int argc, char** argv, cli_args& out) {
  auto need_value = [&](int& i, std::string_view flag) -> std::optional<std::string> {
    std::string_view a = argv[i];
    auto eq = a.find('=');
    if (eq != std::string_view::npos) return std::string(a.substr(eq + 1));
    if (i + 1 >= argc) return std::nullopt;
    (void)flag;
    return std::string(argv[++i]);
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto name = a.substr(0, a.find('='));
    if (a == "-h" || a == "--help") {
      out.help = true;
    } else if (name == "--config") {
      auto v = need_value(i, name);
      if (!v) return "--config needs a file";
      out.src.file = *v;
    } else if (name == "--set") {
      auto v = need_value(i, name);
      if (!v || v->find('=') == std::string::npos) return "--set needs KEY=VALUE";
      auto eq = v->find('=');
      out.src.flags.emplace_back(v->substr(0, eq), v->substr(eq + 1));
    } else if (name == "--listen") {
      auto v = need_value(i, name);
      if (!v) return "--listen needs an address";
      out.src.flags.emplace_back("server.listen", *v);
    } else if (name == "--data-dir") {
      auto v = need_value(i, name);
      if (!v) return "--data-dir needs a directory";
      out.src.flags.emplace_back("data_dir", *v);
    } else if (name == "--email" || name == "--name" || name == "--plan") {
      auto v = need_value(i, name);
      if (!v) return fmt::format("{} needs a value", name);
      out.user_opts[std::string(name.substr(2))] = *v;
    } else if (a == "--force") {
      out.force = true;
    } else if (name == "--timeout") {
      auto v = need_value(i, name);
      if (!v) return "--timeout needs a number of seconds";
      char* end = nullptr;
      double t = std::strtod(v->c_str(), &end);
      if (v->empty() || *end != '\0' || !(t >= 0.1 && t <= 60))
        return fmt::format("--timeout: '{}' is not a number of seconds from 0.1 to 60", *v);
      out.timeout_s = t;
    } else if (a == "--log-json") {
      out.src.flags.emplace_back("log.format", "json");
    } else if (name == "--log-level") {
      auto v = need_value(i, name);
      if (!v) return "--log-level needs a level";
      out.src.flags.emplace_back("log.level", *v);
    } else if (a.starts_with("-")) {
      return fmt::format("unknown flag '{}'", a);
    } else {
      out.words.emplace_back(a);
    }
  }
  return std::nullopt;
}

// The password for `zapd user`: stdin's first line, or a no-echo prompt (twice) on a terminal.
std::optional<std::string> read_password(std::string_view prompt) {
  if (!isatty(STDIN_FILENO)) {
    std::string line;
    if (!std::getline(std::cin, line)) return std::nullopt;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  }
  auto ask = [](std::string_view p) -> std::optional<std::string> {
    fmt::print(stderr, "{}", p);
    termios old{};
    tcgetattr(STDIN_FILENO, &old);
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    std::string line;
    bool ok = static_cast<bool>(std::getline(std::cin, line));
    tcsetattr(STDIN_FILENO, TCSANOW, &old);
    fmt::print(stderr, "\n");
    if (!ok) return std::nullopt;
    return line;
  };
  auto first = ask(prompt);
  if (!first) return std::nullopt;
  auto again = ask("Repeat password: ");
  if (!again || *again != *first) {
    fmt::print(stderr, "zapd: the passwords do not match\n");
    return std::nullopt;
  }
  return first;
}

int user_command(const cli_args& args, const config::loaded& cfg) {
  std::string sub = args.words.size() > 1 ? args.words[1] : "";
  auto opt = [&](const char* k) -> std::string {
    auto it = args.user_opts.find(k);
    return it == args.user_opts.end() ? std::string() : it->second;
  };
  if (sub == "list") return app::user_list(cfg);
  if (sub == "create" || sub == "set-password") {
    if (opt("email").empty()) return usage_error(fmt::format("user {} needs --email", sub));
    if (sub == "create" && opt("name").empty()) return usage_error("user create needs --name");
    auto password = read_password("Password: ");
    if (!password) return usage_error("no password given (on stdin or at the prompt)");
    if (sub == "set-password") return app::user_set_password(cfg, opt("email"), *password);
    config::loaded with_plan = cfg;
    if (auto plan = opt("plan"); !plan.empty()) {
      if (plan != "free" && plan != "paid") return usage_error("--plan must be free or paid");
      with_plan.values.auth_default_plan = plan;
    }
    return app::user_create(with_plan, opt("email"), opt("name"), *password);
  }
  return usage_error(sub.empty() ? "usage: zapd user <create|set-password|list>" : fmt::format("unknown user command '{}'", sub));
}

int print(const char* text) {
  fmt::print("{}", text);
  return app::k_exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
  cli_args args;
  if (auto err = parse(argc, argv, args)) return usage_error(*err);

  std::string cmd = args.words.empty() ? "" : args.words[0];
  if (cmd == "help") {
    args.help = true;
    args.words.erase(args.words.begin());
    cmd = args.words.empty() ? "" : args.words[0];
  }
  if (cmd.empty()) {
    print(k_global_help);
    return args.help ? app::k_exit_ok : app::k_exit_usage;
  }
  if (args.help) {
    if (cmd == "serve") return print(k_serve_help);
    if (cmd == "migrate") return print(k_migrate_help);
    if (cmd == "config") return print(k_config_help);
    if (cmd == "version") return print(k_version_help);
    if (cmd == "user") return print(k_user_help);
    if (cmd == "backup") return print(k_backup_help);
    if (cmd == "restore") return print(k_restore_help);
    if (cmd == "healthcheck") return print(k_healthcheck_help);
    if (cmd == "worker") return print(k_worker_help);
    return usage_error(fmt::format("unknown command '{}'", cmd));
  }

  if (cmd == "version") {
    fmt::print("zapd {} (sqlite {}, boost {}.{}.{}, {})\n", ZAPD_VERSION, sqlite3_libversion(), BOOST_VERSION / 100000,
               BOOST_VERSION / 100 % 1000, BOOST_VERSION % 100, allocator());
    return app::k_exit_ok;
  }

  if (!args.src.file) {
    if (const char* f = std::getenv("ZAPD_CONFIG"); f && *f) args.src.file = f;
  }
  args.src.env = config::process_env();
  auto cfg = config::load(args.src);
  if (!cfg) {
    fmt::print(stderr, "zapd: config error: {}\n", cfg.err().message);
    // Docker reserves a HEALTHCHECK's exit code 2: a health check only ever fails with 1.
    return cmd == "healthcheck" ? app::k_exit_failure : app::k_exit_usage;
  }
  log::level lv = log::level::info;
  log::parse_level(cfg->values.log_level, lv);
  log::configure(lv, cfg->values.log_format == "json" ? log::format::json : log::format::human);

  if (cmd == "serve") {
    if (args.words.size() > 1) return usage_error(fmt::format("serve takes no arguments, got '{}'", args.words[1]));
    return app::serve(*cfg);
  }
  if (cmd == "worker") {
    if (args.words.size() > 1) return usage_error(fmt::format("worker takes no arguments, got '{}'", args.words[1]));
    return app::worker(*cfg);
  }
  if (cmd == "migrate") {
    std::string sub = args.words.size() > 1 ? args.words[1] : "up";
    if (sub != "up" && sub != "status") return usage_error(fmt::format("unknown migrate command '{}' (use up or status)", sub));
    return app::migrate(*cfg, sub == "up");
  }
  if (cmd == "config") {
    if (args.words.size() < 2 || args.words[1] != "check") return usage_error("usage: zapd config check");
    fmt::print("{}", config::render(*cfg));
    if (cfg->values.email_smtp_url.empty())
      fmt::print(stderr, "warning: email.smtp_url (env ZAPD_EMAIL_SMTP_URL) is not set: email steps will fail until it is\n");
    return app::k_exit_ok;
  }
  if (cmd == "user") return user_command(args, *cfg);
  if (cmd == "backup" || cmd == "restore") {
    if (args.words.size() != 2) return usage_error(fmt::format("usage: zapd {} FILE", cmd));
    if (args.force && cmd == "restore") return usage_error("--force is for backup only");
    return cmd == "backup" ? app::backup(*cfg, args.words[1], args.force) : app::restore(*cfg, args.words[1]);
  }
  if (cmd == "healthcheck") {
    if (args.words.size() > 1) {
      fmt::print(stderr, "zapd: healthcheck takes no arguments, got '{}'\n", args.words[1]);
      return app::k_exit_failure;
    }
    return app::healthcheck(*cfg, std::chrono::milliseconds(static_cast<long long>(args.timeout_s * 1000)));
  }
  return usage_error(fmt::format("unknown command '{}'", cmd));
}
