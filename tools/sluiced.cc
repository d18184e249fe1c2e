// sluiced: the gateway daemon. Loads the configuration, checks the kernel, starts one
// shard per core and turns signals into graceful (SIGTERM/SIGINT) or immediate (a
// second SIGTERM/SIGINT) shutdown.
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "audit/sink.h"
#include "core/log.h"
#include "core/reactor.h"
#include "tools/config.h"
#include "tools/gateway.h"

#ifdef SLUICE_WITH_MIMALLOC
#include <mimalloc.h>
#endif

namespace {

using sluice::tools::GatewayShared;
using sluice::tools::Shard;

constexpr uint32_t kRejectHeadroom = 64;  // slots per shard for answering "too many clients"

void usage(FILE* out) {
  std::fputs(
      "usage: sluiced --config FILE [--check]\n"
      "  --config FILE  the TOML configuration (see docs/configuration.md)\n"
      "  --check        validate the configuration and exit (0 = valid)\n"
      "  --version      print the version and exit\n"
      "Signals: SIGTERM/SIGINT drain sessions gracefully (a second one closes them at once).\n",
      out);
}

std::vector<int> usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
      if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  if (cpus.empty()) cpus.push_back(0);
  return cpus;
}

// SO_REUSEPORT would let a second sluiced (or anything else with the option) share a
// port silently; bind once without it first so "address in use" is reported.
bool listen_addresses_free(const sluice::protocol::Settings& settings) {
  for (const auto& address : settings.gateway.listen) {
    const auto* sa = reinterpret_cast<const sockaddr*>(&address.storage);
    const int fd = ::socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, sa, address.length) != 0) {
      LOG_ERROR("cannot listen on %s: %s%s", address.text.c_str(), std::strerror(errno),
                errno == EADDRINUSE ? " (is another sluiced or PostgreSQL already running there?)" : "");
      if (fd >= 0) ::close(fd);
      return false;
    }
    ::close(fd);
  }
  return true;
}

// Mock SCRAM salts for unknown users must be stable across restarts (as PostgreSQL's
// are), or an attacker could tell real users (stable salt) from unknown ones. Derive
// the secret from the configured verifiers: stable while the user list is, and unknown
// to anyone without the configuration.
sluice::protocol::scram::Key derive_mock_secret(const sluice::protocol::Settings& settings) {
  std::string material = "sluice mock SCRAM salt v1";
  if (settings.users.empty()) {
    uint8_t random[32];
    sluice::protocol::scram::random_bytes(random);
    material.append(reinterpret_cast<const char*>(random), sizeof random);
  }
  for (const auto& user : settings.users) {
    material.append(reinterpret_cast<const char*>(user.verifier.stored_key.data()), user.verifier.stored_key.size());
    material.append(reinterpret_cast<const char*>(user.verifier.server_key.data()), user.verifier.server_key.size());
  }
  sluice::protocol::scram::Key key{};
  unsigned int length = 0;
  EVP_Digest(material.data(), material.size(), key.data(), &length, EVP_sha256(), nullptr);
  return key;
}

// "secrets and PII (52 patterns)", for the startup and reload log lines.
std::string describe_masking(const sluice::mask::Masking& masking) {
  const auto& c = masking.config;
  if (!c.enabled || (!c.scan_secrets && !c.scan_pii)) return "DISABLED";
  std::string out = c.scan_secrets && c.scan_pii ? "secrets and PII" : c.scan_secrets ? "secrets only" : "PII only";
  out += " (" + std::to_string(masking.patterns ? masking.patterns->size() : 0) + " patterns";
  if (!c.exempt_groups.empty()) out += ", " + std::to_string(c.exempt_groups.size()) + " exempt group(s)";
  return out + ")";
}

// The server TLS context from [tls]; null with `problem` when the files are unusable.
std::shared_ptr<const sluice::core::tls::Context> load_tls(const sluice::protocol::TlsSettings& tls,
                                                            std::string& problem) {
  sluice::core::tls::ServerFiles files{tls.cert_file, tls.key_file,
                                      tls.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION};
  return sluice::core::tls::Context::server(files, problem);
}

}  // namespace

// SIGHUP: reload [policy], [groups] and [mask] from the file. A file with any error
// changes nothing; open sessions stay connected, their next statement meets the new
// policy, and sessions opened from then on are masked by the new [mask].
void reload_policy(const std::string& config_path, GatewayShared& shared) {
  sluice::tools::LoadedConfig reloaded = sluice::tools::load_config_file(config_path);
  for (const auto& d : reloaded.diagnostics) {
    if (d.is_error)
      LOG_ERROR("SIGHUP: %s", sluice::tools::format_diagnostic(d).c_str());
    else
      LOG_WARN("SIGHUP: %s", sluice::tools::format_diagnostic(d).c_str());
  }
  if (!reloaded.ok()) {
    LOG_ERROR("SIGHUP: %s has errors; the policy in force is unchanged", config_path.c_str());
    return;
  }
  // The certificate is re-read (renewed certificates are picked up without a restart);
  // handshakes in progress and open sessions keep the one they started with.
  std::string tls_note = "TLS off";
  if (shared.settings->tls.enabled() && reloaded.settings.tls.enabled()) {
    std::string problem;
    if (auto context = load_tls(reloaded.settings.tls, problem)) {
      tls_note = "TLS certificate " + context->description();
      shared.tls.publish(std::move(context));
    } else {
      LOG_ERROR("SIGHUP: [tls]: %s; the certificate in use is kept", problem.c_str());
      tls_note = "TLS certificate unchanged";
    }
  } else if (shared.settings->tls.enabled() != reloaded.settings.tls.enabled()) {
    LOG_WARN("SIGHUP: turning TLS on or off takes a restart; the current setting is kept");
    tls_note = shared.settings->tls.enabled() ? "TLS certificate unchanged" : "TLS off";
  }
  const size_t groups = reloaded.policy->groups.size();
  const bool enabled = reloaded.policy->enabled;
  shared.policy.publish(std::move(reloaded.policy));
  const std::string masking = describe_masking(*reloaded.masking);
  if (shared.catalog) shared.catalog->install(reloaded.masking);
  shared.masking.publish(std::move(reloaded.masking));
  LOG_INFO("SIGHUP: policy reloaded from %s (%zu group(s)%s), masking: %s, %s; listeners, targets, users and [oidc] "
           "change only at restart",
           config_path.c_str(), groups, enabled ? "" : ", policy DISABLED", masking.c_str(), tls_note.c_str());
}

int main(int argc, char** argv) {
  std::string config_path;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      config_path = arg.substr(9);
    } else if (arg == "--check") {
      check_only = true;
    } else if (arg == "--version") {
      std::puts("sluiced 0.1.0");
      return 0;
    } else if (arg == "--help" || arg == "-h") {
      usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "sluiced: unknown argument '%s'\n", arg.c_str());
      usage(stderr);
      return 2;
    }
  }
  if (config_path.empty()) {
    std::fputs("sluiced: --config FILE is required\n", stderr);
    usage(stderr);
    return 2;
  }

  sluice::tools::LoadedConfig loaded = sluice::tools::load_config_file(config_path);
  for (const auto& d : loaded.diagnostics) std::fprintf(stderr, "%s\n", sluice::tools::format_diagnostic(d).c_str());
  if (!loaded.ok()) {
    std::fprintf(stderr, "sluiced: %s: configuration has errors; nothing was started\n", config_path.c_str());
    return 2;
  }
  const sluice::protocol::Settings& settings = loaded.settings;
  if (check_only) {
    std::printf("%s: configuration OK (%zu listener(s), %zu target(s), %zu gateway user(s))\n", config_path.c_str(),
                settings.gateway.listen.size(), settings.targets.size(), settings.users.size());
    return 0;
  }
  sluice::core::set_log_level(settings.gateway.log_level);

  sluice::core::KernelFeatures features;
  std::string problem;
  if (!sluice::core::probe_kernel(features, problem)) {
    LOG_ERROR("%s", problem.c_str());
    return 1;
  }
  if (!listen_addresses_free(settings)) return 1;

  // Signals are handled by this thread only (sigwait below); shards never see them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  const std::vector<int> cpus = usable_cpus();
  const unsigned shard_count = settings.gateway.shards != 0 ? settings.gateway.shards : static_cast<unsigned>(cpus.size());
  GatewayShared shared;
  shared.settings = &settings;
  shared.mock_secret = derive_mock_secret(settings);
  shared.slots_per_shard = std::min<uint32_t>(settings.gateway.max_client_connections + kRejectHeadroom,
                                              1u << Shard::kSlotBits);
  shared.ring_fds.assign(shard_count, -1);
  if (settings.tls.enabled()) {
    auto context = load_tls(settings.tls, problem);
    if (!context) {
      LOG_ERROR("[tls]: %s; nothing was started", problem.c_str());
      return 1;
    }
    std::string why = "[tls] kernel_tls = \"off\"";
    const bool probed = settings.tls.kernel_tls != "off" && sluice::core::tls::probe_kernel_tls(why);
    shared.kernel_tls = probed || settings.tls.kernel_tls == "on";
    std::string records = "records encrypted in userspace (kernel TLS unavailable: " + why + ")";
    if (probed)
      records = "kernel TLS available: connections hand their records to the kernel where their cipher allows "
                "(each session_start audit record says which path it took)";
    else if (shared.kernel_tls)
      records = "kernel TLS offered on every connection ([tls] kernel_tls = \"on\") although the probe failed (" + why +
                "): connections the kernel refuses stay in userspace";
    LOG_INFO("TLS: certificate %s, TLS %s or newer; %s", context->description().c_str(), settings.tls.min_version.c_str(),
             records.c_str());
    shared.tls.publish(std::move(context));
  }
  // TLS toward targets: one client context each (CA, client certificate), built now so
  // a bad file stops the start instead of failing every login.
  for (const auto& target : settings.targets) {
    std::shared_ptr<const sluice::core::tls::Context> context;
    if (target.sslmode != sluice::protocol::Target::SslMode::disable) {
      const bool verifies = target.sslmode == sluice::protocol::Target::SslMode::verify_ca ||
                            target.sslmode == sluice::protocol::Target::SslMode::verify_full;
      context = sluice::core::tls::Context::client(verifies ? target.sslrootcert : std::string(), problem,
                                                   target.sslcert, target.sslkey);
      if (!context) {
        LOG_ERROR("[[target]] \"%s\": %s; nothing was started", target.name.c_str(), problem.c_str());
        return 1;
      }
    }
    shared.backend_tls.push_back(std::move(context));
  }
  // Token logins: each issuer's keys, fetched off the connection path by one thread.
  for (const auto& issuer : settings.oidc.issuers) {
    sluice::protocol::oidc::FetchTiming timing;
    timing.max_age_seconds = issuer.refresh_seconds;
    timing.cooldown_seconds = issuer.cooldown_seconds;
    shared.issuers.push_back(std::make_shared<sluice::protocol::oidc::IssuerKeys>(issuer.verify, timing));
  }
  if (!shared.issuers.empty())
    LOG_INFO("token logins: %zu issuer(s); tokens are asked for only over TLS%s", shared.issuers.size(),
             settings.oidc.allow_cleartext_on_loopback ? " or on loopback listeners" : "");
  for (const auto& listener : settings.gateway.listen)
    if (!listener.require_tls && !listener.loopback)
      LOG_WARN("listener %s accepts plaintext logins from the network: passwords and tokens cross it in the clear",
               listener.text.c_str());
  shared.policy.publish(loaded.policy);
  if (!loaded.policy->enabled)
    LOG_WARN("[policy] enabled = false: statements are forwarded without being judged; not for production");
  shared.masking.publish(loaded.masking);
  // Column rules need each target's catalog: read once now (so the first statements
  // are judged against it), then kept current in the background.
  sluice::mask::Catalog catalog(settings);
  catalog.install(loaded.masking);
  catalog.start();
  shared.catalog = &catalog;
  if (!loaded.masking->config.enabled)
    LOG_WARN("[mask] enabled = false: results reach clients unmasked; not for production");
  else
    LOG_INFO("masking: %s", describe_masking(*loaded.masking).c_str());

  // The audit trail: opened (and its chain recovered) before any client is accepted.
  std::unique_ptr<sluice::audit::Writer> audit_writer;
  if (loaded.audit.enabled) {
    audit_writer = sluice::audit::Writer::open(loaded.audit, problem);
    if (!audit_writer) {
      LOG_ERROR("audit: %s; nothing was started", problem.c_str());
      return 1;
    }
    for (unsigned i = 0; i < shard_count; ++i) {
      const int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      if (fd < 0) {
        LOG_ERROR("eventfd: %s", std::strerror(errno));
        return 1;
      }
      shared.audit_wake_fds.push_back(fd);
      shared.audit_logs.push_back(&audit_writer->add_shard(fd));
    }
    audit_writer->start();
  } else {
    LOG_WARN("[audit] enabled = false: statements are not recorded; not for production");
  }

  // Each shard creates its ring on its own thread (SINGLE_ISSUER binds a ring to its
  // creator), reports, then waits until every ring fd is known before serving.
  std::vector<std::unique_ptr<Shard>> shards;
  for (unsigned i = 0; i < shard_count; ++i) shards.push_back(std::make_unique<Shard>(static_cast<int>(i), shared));
  std::vector<std::string> problems(shard_count);
  std::latch initialized(shard_count);
  std::latch go(1);
  std::atomic<bool> start{false};
  std::atomic<unsigned> finished{0};
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < shard_count; ++i) {
    threads.emplace_back([&, i] {
      if (shard_count <= cpus.size()) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpus[i], &set);
        pthread_setaffinity_np(pthread_self(), sizeof set, &set);
      }
      const bool ok = shards[i]->init(problems[i]);
      initialized.count_down();
      go.wait();
      if (ok && start.load()) shards[i]->run();
      finished.fetch_add(1);
    });
  }
  initialized.wait();
  bool all_ok = true;
  for (unsigned i = 0; i < shard_count; ++i) {
    if (!problems[i].empty()) {
      LOG_ERROR("shard %u: %s", i, problems[i].c_str());
      all_ok = false;
    } else {
      shared.ring_fds[i] = shards[i]->ring_fd();
    }
  }
  start.store(all_ok);
  go.count_down();
  if (!all_ok) {
    for (auto& t : threads) t.join();
    if (audit_writer) audit_writer->stop("startup failed");
    return 1;
  }
  std::string listening;
  for (const auto& a : settings.gateway.listen) listening += (listening.empty() ? "" : ", ") + a.text;
#ifdef SLUICE_WITH_MIMALLOC
  const char* allocator = "mimalloc";
#else
  const char* allocator = "system malloc";
#endif
  LOG_INFO("listening on %s: %u shard(s), %s, %s, %zu target(s), %zu gateway user(s)", listening.c_str(), shard_count,
           features.summary().c_str(), allocator, settings.targets.size(), settings.users.size());
  if (audit_writer)
    LOG_INFO("audit: %s mode, writing %s", sluice::audit::durability_name(loaded.audit.mode),
             loaded.audit.directory.c_str());
  // The central sink reads what the writer made durable; it never touches the shards.
  std::unique_ptr<sluice::audit::Sink> audit_sink;
  if (audit_writer && loaded.audit.sink.enabled) {
    const sluice::audit::Writer* writer = audit_writer.get();
    audit_sink = std::make_unique<sluice::audit::Sink>(loaded.audit, [writer] { return writer->durable_end(); });
    LOG_INFO("audit sink: shipping to %s table %s as gateway %s", audit_sink->destination().c_str(),
             loaded.audit.sink.table.c_str(), loaded.audit.sink.gateway.c_str());
    audit_sink->start();
  }

  // The key fetcher: every issuer's keys when due (age, an unknown kid after the
  // cooldown, a retry after a failure), never on a connection's path.
  std::atomic<bool> fetcher_stop{false};
  std::thread fetcher;
  if (!shared.issuers.empty()) {
    fetcher = std::thread([&] {
      std::vector<sluice::protocol::oidc::IssuerKeys::Fetch> sources;
      for (const auto& issuer : settings.oidc.issuers) sources.push_back(sluice::protocol::oidc::key_source(issuer));
      while (!fetcher_stop.load()) {
        timespec now{};
        clock_gettime(CLOCK_MONOTONIC, &now);
        for (size_t i = 0; i < shared.issuers.size(); ++i) {
          std::string line;
          if (!shared.issuers[i]->refresh_if_due(now.tv_sec, sources[i], line)) continue;
          if (line.find("cannot read") != std::string::npos) LOG_WARN("%s", line.c_str());
          else LOG_INFO("%s", line.c_str());
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    });
  }

  int stops = 0;
  while (finished.load() < shard_count) {
    timespec timeout{0, 100'000'000};
    const int sig = sigtimedwait(&signals, nullptr, &timeout);
    if (sig == SIGHUP) {
      reload_policy(config_path, shared);
    } else if (sig == SIGTERM || sig == SIGINT) {
      ++stops;
      const uint64_t code = stops == 1 ? Shard::kDrain : Shard::kTerminate;
      LOG_INFO("%s: %s", sig == SIGTERM ? "SIGTERM" : "SIGINT",
               stops == 1 ? "draining sessions (send again to close them at once)" : "closing all sessions now");
      for (auto& shard : shards) {
        if (write(shard->wake_fd(), &code, sizeof code) != sizeof code) LOG_ERROR("cannot wake a shard: %s", std::strerror(errno));
      }
    }
  }
  for (auto& t : threads) t.join();
  fetcher_stop = true;
  if (fetcher.joinable()) fetcher.join();
  if (audit_writer) audit_writer->stop("shutdown");
  if (audit_sink) audit_sink->stop();
  LOG_INFO("stopped");
  return 0;
}
