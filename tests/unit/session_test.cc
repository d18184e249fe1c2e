// The session state machine driven by a deterministic fake host: input split at
// random points (short reads), output drained in random sizes (short writes), and a
// scripted backend that speaks real SCRAM. No sockets, no io_uring.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>

#include "policy/gate.h"
#include "protocol/session.h"
#include "tests/test_jwt.h"

namespace sluice::protocol {
namespace {

struct Message {
  char type;
  std::vector<uint8_t> body;
  std::string text() const { return std::string(body.begin(), body.end()); }
};

// Splits a typed message stream; asserts it is well formed.
std::vector<Message> split_messages(const std::string& bytes) {
  std::vector<Message> out;
  size_t pos = 0;
  while (pos < bytes.size()) {
    EXPECT_GE(bytes.size() - pos, 5u) << "truncated header";
    if (bytes.size() - pos < 5) break;
    uint32_t length;
    std::memcpy(&length, bytes.data() + pos + 1, 4);
    length = ntohl(length);
    EXPECT_LE(pos + 1 + length, bytes.size()) << "truncated body";
    if (pos + 1 + length > bytes.size()) break;
    out.push_back(Message{bytes[pos], std::vector<uint8_t>(bytes.begin() + pos + 5, bytes.begin() + pos + 1 + length)});
    pos += 1 + length;
  }
  return out;
}

std::string str(const std::vector<uint8_t>& v) { return std::string(v.begin(), v.end()); }

std::string error_code(const Message& m) {
  std::vector<ErrorField> fields;
  if (!parse_error_fields(m.body, fields)) return "malformed";
  return std::string(error_field(fields, 'C'));
}
std::string error_message(const Message& m) {
  std::vector<ErrorField> fields;
  if (!parse_error_fields(m.body, fields)) return "malformed";
  return std::string(error_field(fields, 'M'));
}

// Heap-backed buffers with reference counts, checked for leaks at the end.
class HeapPool final : public core::BufferPool {
 public:
  core::BufferIndex add(const uint8_t* data, size_t size) {
    buffers_.emplace_back(data, data + size);
    refs_.push_back(0);
    return static_cast<core::BufferIndex>(buffers_.size() - 1);
  }
  const uint8_t* data(core::BufferIndex i) const { return buffers_[i].data(); }
  void retain(core::BufferIndex i) override { ++refs_[i]; }
  void release(core::BufferIndex i) override {
    ASSERT_GT(refs_[i], 0);
    --refs_[i];
  }
  size_t buffer_size() const override { return 16384; }
  int outstanding() const {
    int n = 0;
    for (int r : refs_) n += r;
    return n;
  }

 private:
  std::vector<std::vector<uint8_t>> buffers_;
  std::vector<int> refs_;
};

class FakeHost final : public SessionHost {
 public:
  explicit FakeHost(uint32_t seed) : rng(seed) {}
  void flush(Side) override {}
  void set_reading(Side side, bool enabled) override { reading[static_cast<int>(side)] = enabled; }
  void connect_backend(const Target& target) override { connect_requested = target.name; }
  void finish() override { finished = true; }
  void route_cancel(uint32_t pid, uint32_t secret) override { cancels.emplace_back(pid, secret); }
  void cancel_backend_query(const Target&, uint32_t pid, uint32_t secret) override {
    backend_cancels.emplace_back(pid, secret);
  }
  core::BufferPool* buffer_pool() override { return &pool; }
  core::TimerWheel& timers() override { return wheel; }
  StatementGateFactory* statement_gates() override { return gates; }
  bool start_client_tls() override {
    if (offer_tls) ++tls_started;
    return offer_tls;
  }
  bool client_tls_required() const override { return require_tls; }
  oidc::TokenAuthenticator* token_authenticator() override { return tokens; }
  bool client_on_loopback() const override { return loopback; }
  bool start_backend_tls(const Target&) override {
    if (backend_tls) ++backend_tls_started;
    return backend_tls;
  }

  StatementGateFactory* gates = nullptr;  // statement policy, when a test installs one
  bool offer_tls = false;    // the listener has a certificate
  bool require_tls = false;  // the listener refuses plaintext logins
  int tls_started = 0;
  bool backend_tls = false;  // TLS toward targets is available
  oidc::TokenAuthenticator* tokens = nullptr;  // token logins, when a test sets them up
  bool loopback = false;
  int backend_tls_started = 0;
  std::mt19937 rng;
  HeapPool pool;
  core::TimerWheel wheel{10, 64};
  bool reading[2] = {true, true};
  bool finished = false;
  std::string connect_requested;
  std::vector<std::pair<uint32_t, uint32_t>> cancels;
  std::vector<std::pair<uint32_t, uint32_t>> backend_cancels;
};

Settings make_settings() {
  Settings s;
  s.gateway.send_queue_bytes = 64 * 1024;
  s.gateway.max_message_bytes = 1 << 20;
  Target t;
  t.name = "app";
  t.database = "appdb";
  t.user = "sluice_app";
  t.password = Secret("backend-secret-password");
  t.sslmode = Target::SslMode::disable;  // the fake host has no TLS layer (tests below turn it on)
  s.targets.push_back(t);
  GatewayUser u;
  u.name = "alice";
  u.verifier = scram::make_verifier("alice-password", 4096);
  u.groups = {"agents"};
  s.users.push_back(u);
  return s;
}

std::vector<uint8_t> startup(std::vector<std::pair<std::string, std::string>> params) { return startup_message(params); }

// Drives one session; delivers bytes in random pieces, drains output in random pieces.
class Harness {
 public:
  explicit Harness(uint32_t seed = 1, std::string reject = {})
      : settings(make_settings()),
        host(seed),
        session(settings, host, mock, 42, 0xdeadbeef, "test-peer", std::move(reject)) {}

  void deliver(Side side, const std::vector<uint8_t>& bytes) {
    size_t pos = 0;
    while (pos < bytes.size() && !host.finished) {
      const size_t n = std::min<size_t>(bytes.size() - pos, 1 + host.rng() % 23);
      const core::BufferIndex b = host.pool.add(bytes.data() + pos, n);
      host.pool.retain(b);  // the receive completion's reference
      const core::Chunk chunk{host.pool.data(b), static_cast<uint32_t>(n), b};
      if (side == Side::client) session.on_client_data(chunk);
      else session.on_backend_data(chunk);
      host.pool.release(b);
      pos += n;
    }
  }
  // Drains out(side) with short writes; returns the bytes.
  std::string drain(Side side) {
    std::string out;
    core::OutQueue& q = session.out(side);
    while (!q.empty()) {
      iovec iov[8];
      const int n = q.prepare_iovecs(iov, 8);
      size_t budget = 1 + host.rng() % 37;
      size_t sent = 0;
      for (int i = 0; i < n && budget > 0; ++i) {
        const size_t take = std::min(budget, iov[i].iov_len);
        out.append(static_cast<const char*>(iov[i].iov_base), take);
        budget -= take;
        sent += take;
      }
      q.consume(sent);
      session.on_sent(side);
    }
    return out;
  }

  // Runs client login and the backend's SCRAM login. Returns what the client received.
  std::string login(const std::string& user = "alice", const std::string& password = "alice-password") {
    deliver(Side::client, startup({{"user", user}, {"database", "app"}, {"application_name", "psql"}, {"options", "-c x=y"}}));
    auto first = split_messages(drain(Side::client));
    EXPECT_EQ(first.size(), 1u);
    scram::ClientExchange client(password);
    deliver(Side::client, sasl_initial_response("SCRAM-SHA-256", client.client_first()));
    auto cont = split_messages(drain(Side::client));
    if (cont.size() != 1 || cont[0].type != 'R') return "";
    std::string final_message;
    EXPECT_EQ(client.on_server_first(std::string(cont[0].body.begin() + 4, cont[0].body.end()), final_message),
              scram::Step::continue_exchange);
    deliver(Side::client, sasl_response(final_message));
    std::string received;
    if (host.finished) return drain(Side::client);
    received += drain(Side::client);
    EXPECT_EQ(host.connect_requested, "app");
    if (host.connect_requested.empty()) return received;
    session.on_backend_connected(0);
    backend_login();
    received += drain(Side::client);
    return received;
  }

  // The client's SCRAM login up to the backend's TCP connect; `after_final` is sent in
  // the same write as the client's final SCRAM message. Leaves the backend side to the test.
  void authenticate_client_and_connect(const std::vector<uint8_t>& after_final = {}, bool drain_backend = true) {
    deliver(Side::client, startup({{"user", "alice"}, {"database", "app"}}));
    drain(Side::client);
    scram::ClientExchange client("alice-password");
    deliver(Side::client, sasl_initial_response("SCRAM-SHA-256", client.client_first()));
    auto cont = split_messages(drain(Side::client));
    ASSERT_EQ(cont.size(), 1u);
    std::string final_message;
    ASSERT_EQ(client.on_server_first(std::string(cont[0].body.begin() + 4, cont[0].body.end()), final_message),
              scram::Step::continue_exchange);
    auto bytes = sasl_response(final_message);
    bytes.insert(bytes.end(), after_final.begin(), after_final.end());
    deliver(Side::client, bytes);
    drain(Side::client);
    session.on_backend_connected(0);
    if (drain_backend) drain(Side::backend);
  }

  // The backend side: expects the StartupMessage, runs SCRAM as the server.
  void backend_login() {
    const std::string startup_bytes = drain(Side::backend);
    startup_seen = startup_bytes;
    scram::Verifier verifier = scram::make_verifier("backend-secret-password", 4096);
    scram::Key mock_key{};
    scram::ServerExchange server(&verifier, "sluice_app", mock_key);
    deliver(Side::backend, MessageBuilder('R').int32(10).cstring("SCRAM-SHA-256").byte(0).finish());
    auto initial = split_messages(drain(Side::backend));
    ASSERT_EQ(initial.size(), 1u);
    BodyReader r(initial[0].body);
    std::string_view mechanism;
    int32_t length;
    std::span<const uint8_t> data;
    ASSERT_TRUE(r.cstring(mechanism) && r.int32(length) && r.bytes(length, data));
    std::string server_first;
    ASSERT_EQ(server.on_client_first(std::string(data.begin(), data.end()), server_first), scram::Step::continue_exchange);
    deliver(Side::backend, authentication_sasl_continue(server_first));
    auto response = split_messages(drain(Side::backend));
    ASSERT_EQ(response.size(), 1u);
    std::string server_final;
    ASSERT_EQ(server.on_client_final(str(response[0].body), server_final), scram::Step::success);
    std::vector<uint8_t> rest = authentication_sasl_final(server_final);
    for (auto part : {authentication_ok(), parameter_status("server_version", "15.20"), backend_key_data(777, 888),
                      ready_for_query('I')})
      rest.insert(rest.end(), part.begin(), part.end());
    deliver(Side::backend, rest);
  }

  Settings settings;
  FakeHost host;
  scram::Key mock{};
  Session session;
  std::string startup_seen;
};

TEST(Session, LoginRunsScramOnBothSidesAndHidesTheBackendCredential) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    Harness h(seed);
    const std::string received = h.login();
    ASSERT_EQ(h.session.state(), Session::State::ready) << "seed " << seed;
    auto messages = split_messages(received);
    // SASLFinal, AuthenticationOk, ParameterStatus, BackendKeyData (ours), ReadyForQuery.
    ASSERT_EQ(messages.size(), 5u);
    EXPECT_EQ(messages[0].type, 'R');
    EXPECT_EQ(messages[1].type, 'R');
    EXPECT_EQ(messages[2].type, 'S');
    EXPECT_EQ(messages[3].type, 'K');
    BodyReader key(messages[3].body);
    uint32_t pid, secret;
    ASSERT_TRUE(key.uint32(pid) && key.uint32(secret));
    EXPECT_EQ(pid, 42u);  // sluice's key, not the backend's 777/888
    EXPECT_EQ(secret, 0xdeadbeefu);
    EXPECT_EQ(messages[4].type, 'Z');
    EXPECT_EQ(received.find("backend-secret-password"), std::string::npos);
    // The backend got sluice's role and database, the allowed parameter, not `options`.
    EXPECT_NE(h.startup_seen.find(std::string("user\0sluice_app\0", 16)), std::string::npos);
    EXPECT_NE(h.startup_seen.find(std::string("database\0appdb\0", 15)), std::string::npos);
    EXPECT_NE(h.startup_seen.find(std::string("application_name\0psql\0", 22)), std::string::npos);
    EXPECT_EQ(h.startup_seen.find("options"), std::string::npos);
    uint32_t bpid = 0, bsecret = 0;
    EXPECT_TRUE(h.session.accept_cancel(0xdeadbeef, bpid, bsecret));
    EXPECT_EQ(bpid, 777u);
    EXPECT_EQ(bsecret, 888u);
    EXPECT_FALSE(h.session.accept_cancel(0xdeadbeee, bpid, bsecret));
  }
}

TEST(Session, WrongPasswordAndUnknownUserGetTheSameAnswer) {
  Harness wrong(3);
  auto a = split_messages(wrong.login("alice", "not-the-password"));
  Harness unknown(3);
  auto b = split_messages(unknown.login("mallory", "whatever"));
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  EXPECT_EQ(a.back().type, 'E');
  EXPECT_EQ(error_code(a.back()), "28P01");
  EXPECT_EQ(error_code(b.back()), "28P01");
  EXPECT_EQ(error_message(a.back()), "password authentication failed for user \"alice\"");
  EXPECT_EQ(error_message(b.back()), "password authentication failed for user \"mallory\"");
  EXPECT_TRUE(wrong.host.finished);
  EXPECT_TRUE(unknown.host.finished);
  EXPECT_TRUE(wrong.host.connect_requested.empty());
}

TEST(Session, UnknownTargetIsReportedAfterAuthentication) {
  Harness h(5);
  h.settings.targets[0].name = "other";
  auto messages = split_messages(h.login());
  ASSERT_FALSE(messages.empty());
  EXPECT_EQ(error_code(messages.back()), "3D000");
  EXPECT_TRUE(h.host.finished);
}

TEST(Session, ForwardsByteForByteUnderRandomSplitsAndShortWrites) {
  for (uint32_t seed = 1; seed <= 30; ++seed) {
    Harness h(seed);
    h.login();
    ASSERT_EQ(h.session.state(), Session::State::ready);
    std::vector<uint8_t> client_stream;
    std::vector<uint8_t> backend_stream;
    std::mt19937 rng(seed);
    for (int i = 0; i < 50; ++i) {
      std::string sql = "SELECT " + std::string(rng() % 3000, 'x');
      auto q = MessageBuilder('Q').cstring(sql).finish();
      client_stream.insert(client_stream.end(), q.begin(), q.end());
      auto row = MessageBuilder('D').int16(1).int32(static_cast<int32_t>(sql.size())).bytes(sql).finish();
      for (int k = 0; k < 3; ++k) backend_stream.insert(backend_stream.end(), row.begin(), row.end());
      auto z = ready_for_query('I');
      backend_stream.insert(backend_stream.end(), z.begin(), z.end());
    }
    h.deliver(Side::client, client_stream);
    EXPECT_EQ(h.drain(Side::backend), str(client_stream)) << "seed " << seed;
    h.deliver(Side::backend, backend_stream);
    EXPECT_EQ(h.drain(Side::client), str(backend_stream)) << "seed " << seed;
    EXPECT_TRUE(h.session.idle());
    EXPECT_EQ(h.host.pool.outstanding(), 0) << "every buffer reference is released after its bytes are sent";
  }
}

TEST(Session, BackpressureStopsReadingTheBackendUntilTheClientDrains) {
  Harness h(7);
  h.login();
  std::vector<uint8_t> rows;
  auto row = MessageBuilder('D').int16(1).int32(1000).bytes(std::string(1000, 'r')).finish();
  while (rows.size() < 200 * 1024) rows.insert(rows.end(), row.begin(), row.end());
  h.deliver(Side::backend, rows);
  EXPECT_FALSE(h.host.reading[1]) << "the client's queue passed send_queue_bytes";
  h.drain(Side::client);
  EXPECT_TRUE(h.host.reading[1]);
}

TEST(Session, UnknownMessageTypeIsAProtocolViolation) {
  Harness h(8);
  h.login();
  h.deliver(Side::client, MessageBuilder('!').int32(1).finish());
  auto messages = split_messages(h.drain(Side::client));
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(error_code(messages[0]), "08P01");
  EXPECT_TRUE(h.host.finished);
  EXPECT_TRUE(h.drain(Side::backend).empty()) << "a message sluice did not accept is never forwarded";
}

TEST(Session, HostileLengthsAreRejectedBeforeAnyAllocation) {
  for (uint32_t length : {0u, 3u, 0x7fffffffu, 0xffffffffu}) {
    Harness h(9);
    h.login();
    std::vector<uint8_t> msg = {'Q', 0, 0, 0, 0};
    const uint32_t be = htonl(length);
    std::memcpy(msg.data() + 1, &be, 4);
    h.deliver(Side::client, msg);
    auto messages = split_messages(h.drain(Side::client));
    ASSERT_EQ(messages.size(), 1u) << length;
    // Beyond PostgreSQL's own 1 GB limit a length is malformed, as PostgreSQL says.
    EXPECT_EQ(error_code(messages[0]), "08P01") << length;
    EXPECT_TRUE(h.host.finished);
  }
  Harness big(10);
  big.login();
  big.deliver(Side::client, {'Q', 0x00, 0x20, 0x00, 0x05});  // 2 MiB > max_message_bytes (1 MiB)
  auto messages = split_messages(big.drain(Side::client));
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(error_code(messages[0]), "54000");
}

TEST(Session, AnOversizedRowCancelsItsQueryAndTheSessionGoesOn) {
  Harness h(21);
  h.login();
  h.deliver(Side::client, MessageBuilder('Q').cstring("SELECT big FROM t").finish());
  h.drain(Side::backend);
  // A row announced at 2 MiB (over the 1 MiB cap), its bytes following in pieces, then
  // the rest of the result as PostgreSQL would send it after the cancel.
  std::vector<uint8_t> stream = MessageBuilder('T').int16(0).finish();
  const std::vector<uint8_t> small = MessageBuilder('D').int16(1).int32(2).bytes(std::string_view("ok")).finish();
  stream.insert(stream.end(), small.begin(), small.end());
  const uint32_t big_length = htonl((2u << 20) + 4);
  stream.push_back('D');
  stream.insert(stream.end(), reinterpret_cast<const uint8_t*>(&big_length), reinterpret_cast<const uint8_t*>(&big_length) + 4);
  stream.insert(stream.end(), 2u << 20, 'x');
  for (const auto& part : {small, MessageBuilder('E').byte('S').cstring("ERROR").byte('C').cstring("57014").byte(0).finish(),
                           ready_for_query('I')})
    stream.insert(stream.end(), part.begin(), part.end());
  h.deliver(Side::backend, stream);
  const auto messages = split_messages(h.drain(Side::client));
  ASSERT_EQ(messages.size(), 4u) << "T, the row before, sluice's error, ReadyForQuery";
  EXPECT_EQ(messages[0].type, 'T');
  EXPECT_EQ(messages[1].type, 'D');
  EXPECT_EQ(error_code(messages[2]), "54000");
  EXPECT_NE(str(messages[2].body).find("cancelled the query"), std::string::npos);
  EXPECT_EQ(messages[3].type, 'Z');
  ASSERT_EQ(h.host.backend_cancels.size(), 1u);
  EXPECT_EQ(h.host.backend_cancels[0], (std::pair<uint32_t, uint32_t>{777, 888})) << "the backend's own key";
  EXPECT_FALSE(h.host.finished) << "the session goes on";
  EXPECT_FALSE(h.host.reading[static_cast<int>(Side::client)])
      << "the next statement waits until PostgreSQL has processed the cancel";
  h.session.on_backend_cancel_done();
  EXPECT_TRUE(h.host.reading[static_cast<int>(Side::client)]);
  // The next statement's result is forwarded as usual.
  h.deliver(Side::client, MessageBuilder('Q').cstring("SELECT 1").finish());
  h.drain(Side::backend);
  std::vector<uint8_t> next = small;
  const auto z = ready_for_query('I');
  next.insert(next.end(), z.begin(), z.end());
  h.deliver(Side::backend, next);
  EXPECT_EQ(split_messages(h.drain(Side::client)).size(), 2u);
}

TEST(Session, SslRequestIsDeclinedAndStuffedBytesAreRejected) {
  Harness h(11);
  h.deliver(Side::client, {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f});
  EXPECT_EQ(h.drain(Side::client), "N");
  EXPECT_FALSE(h.host.finished);

  Harness stuffed(12);
  std::vector<uint8_t> bytes = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};
  auto s = startup({{"user", "alice"}});
  bytes.insert(bytes.end(), s.begin(), s.end());
  // One chunk: the startup packet was sent before our 'N' could be seen.
  const core::BufferIndex b = stuffed.host.pool.add(bytes.data(), bytes.size());
  stuffed.host.pool.retain(b);
  stuffed.session.on_client_data(core::Chunk{stuffed.host.pool.data(b), static_cast<uint32_t>(bytes.size()), b});
  stuffed.host.pool.release(b);
  const std::string out = stuffed.drain(Side::client);
  ASSERT_FALSE(out.empty());
  // Refused before any answer: neither 'N' (the bytes would be read as plaintext) nor 'S'.
  auto messages = split_messages(out);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(error_code(messages[0]), "08P01");
  EXPECT_EQ(error_message(messages[0]), "received unencrypted data after SSL request");
  EXPECT_TRUE(stuffed.host.finished);
}

TEST(Session, SslRequestHandsTheConnectionToTheHostsTls) {
  const std::vector<uint8_t> ssl_request = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};
  Harness h(16);
  h.host.offer_tls = true;
  h.deliver(Side::client, ssl_request);
  EXPECT_EQ(h.host.tls_started, 1);
  EXPECT_EQ(h.drain(Side::client), "") << "the host sends the 'S' itself, ahead of the handshake";
  h.session.on_client_tls_established(/*direct=*/false, "");
  // After the handshake the StartupMessage arrives (decrypted) and login goes on.
  h.deliver(Side::client, startup({{"user", "alice"}}));
  auto messages = split_messages(h.drain(Side::client));
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].type, 'R');
  // A second SSLRequest inside TLS is a protocol violation.
  Harness twice(17);
  twice.host.offer_tls = true;
  twice.deliver(Side::client, ssl_request);
  twice.session.on_client_tls_established(false, "");
  twice.deliver(Side::client, ssl_request);
  EXPECT_EQ(twice.host.tls_started, 1);
  EXPECT_EQ(error_code(split_messages(twice.drain(Side::client)).at(0)), "08P01");
}

TEST(Session, RequireTlsRefusesAPlaintextStartupBeforeAnyAuthentication) {
  Harness h(18);
  h.host.require_tls = true;
  h.deliver(Side::client, startup({{"user", "alice"}}));
  auto messages = split_messages(h.drain(Side::client));
  ASSERT_EQ(messages.size(), 1u) << "an ErrorResponse and nothing else (no authentication request)";
  EXPECT_EQ(error_code(messages[0]), "28000");
  EXPECT_NE(error_message(messages[0]).find("requires TLS"), std::string::npos);
  EXPECT_TRUE(h.host.finished);

  Harness encrypted(19);
  encrypted.host.require_tls = true;
  encrypted.host.offer_tls = true;
  encrypted.session.on_client_tls_established(/*direct=*/true, "postgresql");
  encrypted.deliver(Side::client, startup({{"user", "alice"}}));
  messages = split_messages(encrypted.drain(Side::client));
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].type, 'R');
}

TEST(Session, DirectTlsWithoutAlpnIsRefused) {
  Harness h(20);
  h.session.on_client_tls_established(/*direct=*/true, "");
  auto messages = split_messages(h.drain(Side::client));
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(error_code(messages[0]), "08P01");
  EXPECT_NE(error_message(messages[0]).find("ALPN"), std::string::npos);
  EXPECT_TRUE(h.host.finished);
}

TEST(Session, BadStartupPacketsCloseWithoutCrashing) {
  for (uint32_t length : {0u, 3u, 7u, 10001u, 0x7fffffffu}) {
    Harness h(13);
    const uint32_t be = htonl(length);
    std::vector<uint8_t> bytes(4);
    std::memcpy(bytes.data(), &be, 4);
    h.deliver(Side::client, bytes);
    EXPECT_TRUE(h.host.finished) << length;
    EXPECT_TRUE(h.drain(Side::client).empty()) << "PostgreSQL closes without a reply";
  }
  Harness version(14);
  version.deliver(Side::client, MessageBuilder::untyped().int32(0x00020000).cstring("user").cstring("x").byte(0).finish());
  auto messages = split_messages(version.drain(Side::client));
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(error_code(messages[0]), "0A000");

  Harness no_terminator(15);
  no_terminator.deliver(Side::client, MessageBuilder::untyped().int32(0x00030000).cstring("user").cstring("x").finish());
  messages = split_messages(no_terminator.drain(Side::client));
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(error_code(messages[0]), "08P01");
}

TEST(Session, NewerMinorVersionAndProtocolOptionsAreNegotiatedDown) {
  Harness h(28);
  // A protocol 3.2 client asking for an extension (as PostgreSQL 18's libpq may).
  h.deliver(Side::client, MessageBuilder::untyped()
                              .int32(0x00030002)
                              .cstring("user").cstring("alice")
                              .cstring("_pq_.some_extension").cstring("on")
                              .byte(0)
                              .finish());
  auto messages = split_messages(h.drain(Side::client));
  ASSERT_EQ(messages.size(), 2u);
  ASSERT_EQ(messages[0].type, 'v');
  BodyReader r(messages[0].body);
  uint32_t newest = 0, count = 0;
  std::string_view option;
  ASSERT_TRUE(r.uint32(newest) && r.uint32(count) && r.cstring(option));
  EXPECT_EQ(newest, 0x00030000u) << "sluice speaks 3.0";
  EXPECT_EQ(count, 1u);
  EXPECT_EQ(option, "_pq_.some_extension");
  EXPECT_EQ(messages[1].type, 'R') << "authentication continues";
  EXPECT_FALSE(h.host.finished);
}

TEST(Session, CancelRequestIsRoutedAndNeverAnswered) {
  Harness h(16);
  h.deliver(Side::client, cancel_request(0x100005, 0xabcdef01));
  ASSERT_EQ(h.host.cancels.size(), 1u);
  EXPECT_EQ(h.host.cancels[0].first, 0x100005u);
  EXPECT_EQ(h.host.cancels[0].second, 0xabcdef01u);
  EXPECT_TRUE(h.host.finished);
  EXPECT_TRUE(h.drain(Side::client).empty());
}

TEST(Session, TooManyClientsIsAnsweredAfterTheStartupPacket) {
  Harness h(17, "53300");
  h.deliver(Side::client, startup({{"user", "alice"}}));
  auto messages = split_messages(h.drain(Side::client));
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(error_code(messages[0]), "53300");
  EXPECT_EQ(error_message(messages[0]), "sorry, too many clients already");
}

TEST(Session, LostBackendAtAMessageBoundaryGetsAClearError) {
  Harness h(18);
  h.login();
  h.session.on_backend_closed(0);
  auto messages = split_messages(h.drain(Side::client));
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(error_code(messages[0]), "08006");
  EXPECT_NE(error_message(messages[0]).find("target \"app\""), std::string::npos);
  EXPECT_TRUE(h.host.finished);
}

TEST(Session, LostBackendMidMessageInjectsNothingIntoTheStream) {
  Harness h(19);
  h.login();
  auto row = MessageBuilder('D').int16(1).int32(100).bytes(std::string(100, 'v')).finish();
  row.resize(50);  // the backend died half way through a DataRow
  h.deliver(Side::backend, row);
  h.session.on_backend_closed(-104);
  const std::string out = h.drain(Side::client);
  EXPECT_EQ(out.size(), 50u) << "only the forwarded partial bytes; no ErrorResponse spliced into a message";
  EXPECT_TRUE(h.host.finished);
}

TEST(Session, BackendFatalIsPassedOnWithoutASecondError) {
  Harness h(20);
  h.login();
  ErrorInfo fatal_error;
  fatal_error.severity = "FATAL";
  fatal_error.sqlstate = "57P01";
  fatal_error.message = "terminating connection due to administrator command";
  h.deliver(Side::backend, error_response(fatal_error));
  h.session.on_backend_closed(0);
  auto messages = split_messages(h.drain(Side::client));
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(error_code(messages[0]), "57P01");
}

TEST(Session, HandshakeTimeoutClosesASlowClient) {
  Harness h(21);
  h.deliver(Side::client, {0, 0});  // half a length word, then nothing
  for (int i = 0; i < 2000 && !h.host.finished; ++i) h.host.wheel.advance();
  ASSERT_TRUE(h.host.finished);
  auto messages = split_messages(h.drain(Side::client));
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(error_code(messages[0]), "57014");
}

TEST(Session, GracefulShutdownWaitsForTheRunningQuery) {
  Harness h(22);
  h.login();
  h.deliver(Side::client, MessageBuilder('Q').cstring("SELECT pg_sleep(1)").finish());
  h.drain(Side::backend);
  h.session.begin_shutdown();
  EXPECT_FALSE(h.host.finished) << "a query is running";
  h.deliver(Side::backend, ready_for_query('I'));
  EXPECT_TRUE(h.host.finished);
  auto to_client = split_messages(h.drain(Side::client));
  ASSERT_EQ(to_client.size(), 2u);
  EXPECT_EQ(to_client[0].type, 'Z');
  EXPECT_EQ(error_code(to_client[1]), "57P01");
  auto to_backend = split_messages(h.drain(Side::backend));
  ASSERT_EQ(to_backend.size(), 1u);
  EXPECT_EQ(to_backend[0].type, 'X') << "the backend session is ended with Terminate";
}

TEST(Session, IdleTimeoutCountsFromLogin) {
  Harness h(27);
  h.settings.gateway.idle_timeout = std::chrono::milliseconds(100);
  h.login();
  ASSERT_EQ(h.session.state(), Session::State::ready);
  for (int i = 0; i < 50 && !h.host.finished; ++i) h.host.wheel.advance();
  ASSERT_TRUE(h.host.finished) << "a session idle since its login is closed too";
  auto messages = split_messages(h.drain(Side::client));
  ASSERT_FALSE(messages.empty());
  EXPECT_EQ(error_code(messages.back()), "57P05");
}

TEST(Session, TerminateIsForwardedAndEndsTheSession) {
  Harness h(23);
  h.login();
  h.deliver(Side::client, MessageBuilder('X').finish());
  EXPECT_TRUE(h.host.finished);
  auto to_backend = split_messages(h.drain(Side::backend));
  ASSERT_EQ(to_backend.size(), 1u);
  EXPECT_EQ(to_backend[0].type, 'X');
}

TEST(Session, BackendMd5AndCleartextAuthentication) {
  for (int code : {3, 5}) {
    Harness h(24);
    h.authenticate_client_and_connect();
    if (code == 3) h.deliver(Side::backend, MessageBuilder('R').int32(3).finish());
    else h.deliver(Side::backend, MessageBuilder('R').int32(5).bytes(std::string("salt")).finish());
    auto answer = split_messages(h.drain(Side::backend));
    ASSERT_EQ(answer.size(), 1u);
    EXPECT_EQ(answer[0].type, 'p');
    const uint8_t salt[4] = {'s', 'a', 'l', 't'};
    const std::string expected = code == 3 ? "backend-secret-password"
                                           : scram::md5_password_response("sluice_app", "backend-secret-password", salt);
    EXPECT_EQ(answer[0].text(), expected + std::string(1, '\0'));
    auto rest = authentication_ok();
    auto z = ready_for_query('I');
    rest.insert(rest.end(), z.begin(), z.end());
    h.deliver(Side::backend, rest);
    EXPECT_EQ(h.session.state(), Session::State::ready);
  }
}

TEST(Session, BackendThatSkipsScramFinalIsRefused) {
  Harness h(25);
  h.authenticate_client_and_connect();
  h.deliver(Side::backend, MessageBuilder('R').int32(10).cstring("SCRAM-SHA-256").byte(0).finish());
  h.drain(Side::backend);
  // A server that cannot prove it knows the password jumps straight to AuthenticationOk.
  h.deliver(Side::backend, authentication_ok());
  auto messages = split_messages(h.drain(Side::client));
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(error_code(messages[0]), "08006");
  EXPECT_TRUE(h.host.finished);
}

TEST(Session, ClientMessagesSentDuringBackendLoginAreHeldAndForwardedInOrder) {
  Harness h(26);
  auto q = MessageBuilder('Q').cstring("SELECT 1").finish();
  h.authenticate_client_and_connect(q, /*drain_backend=*/false);
  h.backend_login();
  EXPECT_EQ(h.session.state(), Session::State::ready);
  EXPECT_EQ(h.drain(Side::backend), str(q));
}


// The last ErrorResponse's message sent to the client ("" when none).
std::string last_client_error(Harness& h) {
  std::string message;
  for (const Message& m : split_messages(h.drain(Side::client)))
    if (m.type == 'E') message = error_message(m);
  return message;
}

TEST(Session, BackendTlsFollowsTheTargetsSslmode) {
  const std::string ssl_request("\0\0\0\x08\x04\xd2\x16\x2f", 8);
  {
    SCOPED_TRACE("prefer, and the server has no TLS: plaintext login");
    Harness h(40);
    h.settings.targets[0].sslmode = Target::SslMode::prefer;
    h.authenticate_client_and_connect({}, /*drain_backend=*/false);
    EXPECT_EQ(h.drain(Side::backend), ssl_request);
    h.deliver(Side::backend, {'N'});
    h.backend_login();
    EXPECT_EQ(h.session.state(), Session::State::ready);
  }
  {
    SCOPED_TRACE("require, and the server has no TLS: refused");
    Harness h(41);
    h.settings.targets[0].sslmode = Target::SslMode::require;
    h.authenticate_client_and_connect({}, false);
    EXPECT_EQ(h.drain(Side::backend), ssl_request);
    h.deliver(Side::backend, {'N'});
    EXPECT_NE(last_client_error(h).find("does not accept TLS"), std::string::npos);
    EXPECT_TRUE(h.host.finished);
  }
  {
    SCOPED_TRACE("'S': the host's TLS, then the StartupMessage inside it");
    Harness h(42);
    h.settings.targets[0].sslmode = Target::SslMode::verify_full;
    h.host.backend_tls = true;
    h.authenticate_client_and_connect({}, false);
    EXPECT_EQ(h.drain(Side::backend), ssl_request);
    h.deliver(Side::backend, {'S'});
    EXPECT_EQ(h.host.backend_tls_started, 1);
    EXPECT_EQ(h.drain(Side::backend), "") << "nothing in plaintext after the 'S'";
    h.session.on_backend_tls_established();
    h.backend_login();
    EXPECT_EQ(h.session.state(), Session::State::ready);
  }
  {
    SCOPED_TRACE("'S' and more bytes: injected before any handshake");
    Harness h(43);
    h.settings.targets[0].sslmode = Target::SslMode::require;
    h.host.backend_tls = true;
    h.authenticate_client_and_connect({}, false);
    h.drain(Side::backend);
    h.deliver(Side::backend, {'S', 'R', 0, 0, 0, 8, 0, 0, 0, 0});
    EXPECT_NE(last_client_error(h).find("unencrypted data"), std::string::npos);
    EXPECT_TRUE(h.host.finished);
    EXPECT_NE(h.session.state(), Session::State::ready);
  }
  {
    SCOPED_TRACE("the handshake fails");
    Harness h(44);
    h.settings.targets[0].sslmode = Target::SslMode::verify_ca;
    h.host.backend_tls = true;
    h.authenticate_client_and_connect({}, false);
    h.drain(Side::backend);
    h.deliver(Side::backend, {'S'});
    h.session.on_backend_tls_failed("certificate verify failed");
    EXPECT_NE(last_client_error(h).find("TLS with the server failed"), std::string::npos);
    EXPECT_TRUE(h.host.finished);
  }
}

// --- token logins ------------------------------------------------------------------

// One issuer ("https://idp.test", audience "sluice") whose keys are already read.
struct TokenIssuer {
  test_jwt::TestKey key = test_jwt::TestKey::make(jwt::Algorithm::es256, "k1");
  std::unique_ptr<oidc::TokenAuthenticator> authenticator;
  TokenIssuer() {
    jwt::IssuerSettings settings;
    settings.issuer = "https://idp.test";
    settings.audience = "sluice";
    auto keys = std::make_shared<oidc::IssuerKeys>(settings, oidc::FetchTiming{});
    std::string line;
    const std::string jwks = "{\"keys\":[" + key.jwk() + "]}";
    keys->refresh_if_due(0, [&](std::string& document, std::string&) { document = jwks; return true; }, line);
    authenticator = std::make_unique<oidc::TokenAuthenticator>(std::vector<std::shared_ptr<oidc::IssuerKeys>>{keys});
  }
  std::string token(const std::string& sub, int64_t seconds_left, const std::string& groups = "[\"agents\"]") {
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    return key.token("{\"iss\":\"https://idp.test\",\"aud\":\"sluice\",\"sub\":\"" + sub + "\",\"groups\":" + groups +
                     ",\"iat\":" + std::to_string(now - 1) + ",\"exp\":" + std::to_string(now + seconds_left) + "}");
  }
};

std::vector<uint8_t> password_message(const std::string& password) {
  return MessageBuilder('p').cstring(password).finish();
}

// Sends the StartupMessage as `user` and answers the cleartext request with `token`.
// Returns the messages the client got after the StartupMessage.
std::vector<Message> token_login(Harness& h, const std::string& user, const std::string& token) {
  h.deliver(Side::client, startup({{"user", user}, {"database", "app"}}));
  auto asked = split_messages(h.drain(Side::client));
  if (asked.size() != 1 || asked[0].type != 'R' || asked[0].body.size() != 4 || asked[0].body[3] != 3) return asked;
  h.deliver(Side::client, password_message(token));
  return split_messages(h.drain(Side::client));
}

TEST(SessionTokens, ATokenIsAskedForOnlyOverTlsOrAnAllowedLoopback) {
  TokenIssuer issuer;
  Harness plain(60);
  plain.settings.oidc.issuers.emplace_back();
  plain.host.tokens = issuer.authenticator.get();
  auto refused = token_login(plain, "ci-bot", issuer.token("ci-bot", 600));
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(error_code(refused[0]), "28000") << "refused before any password request";
  EXPECT_TRUE(plain.host.finished);

  Harness loopback(61);
  loopback.settings.oidc.issuers.emplace_back();
  loopback.settings.oidc.allow_cleartext_on_loopback = true;
  loopback.host.loopback = true;
  loopback.host.tokens = issuer.authenticator.get();
  token_login(loopback, "ci-bot", issuer.token("ci-bot", 600));
  EXPECT_EQ(loopback.host.connect_requested, "app");
  EXPECT_EQ(loopback.session.user(), "ci-bot");

  Harness tls(62);
  tls.settings.oidc.issuers.emplace_back();
  tls.host.tokens = issuer.authenticator.get();
  tls.session.on_client_tls_established(false, "");
  token_login(tls, "ci-bot", issuer.token("ci-bot", 600));
  EXPECT_EQ(tls.host.connect_requested, "app");
  // A gateway user still gets SCRAM.
  Harness alice(63);
  alice.settings.oidc.issuers.emplace_back();
  alice.host.tokens = issuer.authenticator.get();
  alice.login();
  EXPECT_EQ(alice.session.state(), Session::State::ready);
}

TEST(SessionTokens, RefusedTokensSayWhyWithoutTheToken) {
  TokenIssuer issuer;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {issuer.token("ci-bot", -300), "expired"},
      {issuer.token("someone-else", 600), "is for \"someone-else\""},
      {"not.a.token", "not a JWT"},
  };
  for (const auto& [token, why] : cases) {
    Harness h(64);
    h.settings.oidc.issuers.emplace_back();
    h.host.tokens = issuer.authenticator.get();
    h.session.on_client_tls_established(false, "");
    auto messages = token_login(h, "ci-bot", token);
    ASSERT_EQ(messages.size(), 1u) << why;
    EXPECT_EQ(error_code(messages[0]), "28P01");
    EXPECT_NE(error_message(messages[0]).find(why), std::string::npos) << error_message(messages[0]);
    EXPECT_EQ(error_message(messages[0]).find(token), std::string::npos);
    EXPECT_TRUE(h.host.finished);
  }
  Harness malformed(65);
  malformed.settings.oidc.issuers.emplace_back();
  malformed.host.tokens = issuer.authenticator.get();
  malformed.session.on_client_tls_established(false, "");
  malformed.deliver(Side::client, startup({{"user", "ci-bot"}, {"database", "app"}}));
  malformed.drain(Side::client);
  malformed.deliver(Side::client, MessageBuilder('p').bytes(std::string("no terminator")).finish());
  EXPECT_EQ(error_code(split_messages(malformed.drain(Side::client)).at(0)), "08P01");
}

// Logs in with a token valid for `seconds_left`, through the backend login.
void ready_with_token(Harness& h, TokenIssuer& issuer, int64_t seconds_left) {
  h.settings.oidc.issuers.emplace_back();
  h.host.tokens = issuer.authenticator.get();
  h.session.on_client_tls_established(false, "");
  token_login(h, "ci-bot", issuer.token("ci-bot", seconds_left));
  ASSERT_EQ(h.host.connect_requested, "app");
  h.session.on_backend_connected(0);
  h.backend_login();
  ASSERT_EQ(h.session.state(), Session::State::ready);
  h.drain(Side::client);
}

TEST(SessionTokens, AnIdleSessionIsClosedAtTheTokensExpiry) {
  TokenIssuer issuer;
  Harness h(66);
  ready_with_token(h, issuer, 1);
  for (int i = 0; i < 400 && !h.host.finished; ++i) h.host.wheel.advance();  // 10 ms ticks
  ASSERT_TRUE(h.host.finished);
  auto messages = split_messages(h.drain(Side::client));
  ASSERT_FALSE(messages.empty());
  EXPECT_NE(error_message(messages.back()).find("has expired"), std::string::npos);
  EXPECT_EQ(split_messages(h.drain(Side::backend)).back().type, 'X') << "the backend session ends cleanly";
}

TEST(SessionTokens, FinishTransactionLetsTheRunningTransactionEnd) {
  TokenIssuer issuer;
  Harness h(67);
  h.settings.oidc.finish_transaction_at_expiry = true;
  ready_with_token(h, issuer, 1);
  h.deliver(Side::client, MessageBuilder('Q').cstring("BEGIN").finish());
  h.drain(Side::backend);
  auto in_transaction = MessageBuilder('C').cstring("BEGIN").finish();
  const auto t = ready_for_query('T');
  in_transaction.insert(in_transaction.end(), t.begin(), t.end());
  h.deliver(Side::backend, in_transaction);
  h.drain(Side::client);
  for (int i = 0; i < 400; ++i) h.host.wheel.advance();
  EXPECT_FALSE(h.host.finished) << "the transaction is still open";
  h.deliver(Side::client, MessageBuilder('Q').cstring("COMMIT").finish());
  h.drain(Side::backend);
  auto committed = MessageBuilder('C').cstring("COMMIT").finish();
  const auto idle = ready_for_query('I');
  committed.insert(committed.end(), idle.begin(), idle.end());
  h.deliver(Side::backend, committed);
  EXPECT_TRUE(h.host.finished) << "closed once the transaction ended";
  auto messages = split_messages(h.drain(Side::client));
  ASSERT_FALSE(messages.empty());
  EXPECT_NE(error_message(messages.back()).find("has expired"), std::string::npos);
}

// --- statement policy ---------------------------------------------------------

std::shared_ptr<const policy::Policy> agent_policy(policy::AccessMode mode, std::vector<std::string> targets = {"*"}) {
  auto p = std::make_shared<policy::Policy>();
  policy::Group g;
  g.name = "agents";
  g.targets = std::move(targets);
  g.access = mode;
  g.packs = {"agent-default"};
  p->groups.push_back(g);
  return p;
}

// The text of the single Query (or the statement of the single Parse) in `bytes`.
std::string statement_text(const std::string& bytes, char type) {
  for (const Message& m : split_messages(bytes)) {
    if (m.type != type) continue;
    BodyReader r(m.body);
    std::string_view name, sql;
    if (type == 'P' && !r.cstring(name)) return "";
    if (!r.cstring(sql)) return "";
    return std::string(sql);
  }
  return "";
}

// What PostgreSQL answers to sluice's substitute statement.
std::vector<uint8_t> server_cast_error(const std::string& substitute) {
  const size_t open = substitute.find('\'');
  const size_t close = substitute.rfind('\'');
  ErrorInfo e;
  e.sqlstate = "22P02";
  e.message = "invalid input syntax for type integer: \"" + substitute.substr(open + 1, close - open - 1) + "\"";
  return error_response(e);
}

std::vector<uint8_t> concat(std::initializer_list<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

TEST(SessionPolicy, BlockedQueryNeverReachesTheServerAndTheClientGetsTheRefusal) {
  for (uint32_t seed = 1; seed <= 10; ++seed) {
    Harness h(seed);
    policy::PolicyGates gates(agent_policy(policy::AccessMode::read_write));
    h.host.gates = &gates;
    h.login();
    ASSERT_EQ(h.session.state(), Session::State::ready);
    h.deliver(Side::client, MessageBuilder('Q').cstring("TRUNCATE orders").finish());
    const std::string to_server = h.drain(Side::backend);
    EXPECT_EQ(to_server.find("TRUNCATE"), std::string::npos);
    const std::string substitute = statement_text(to_server, 'Q');
    ASSERT_NE(substitute.find("sluice: statement blocked by policy"), std::string::npos) << substitute;
    // The server aborts the open transaction on the substitute's error, exactly as
    // for any failing statement.
    h.deliver(Side::backend, concat({server_cast_error(substitute), ready_for_query('E')}));
    auto reply = split_messages(h.drain(Side::client));
    ASSERT_EQ(reply.size(), 2u);
    ASSERT_EQ(reply[0].type, 'E');
    std::vector<ErrorField> fields;
    ASSERT_TRUE(parse_error_fields(reply[0].body, fields));
    EXPECT_EQ(error_field(fields, 'C'), "42501");
    EXPECT_NE(error_field(fields, 'M').find("rule \"truncate\""), std::string_view::npos);
    EXPECT_EQ(error_field(fields, 'M').find("invalid input syntax"), std::string_view::npos);
    EXPECT_EQ(reply[1].type, 'Z');
    EXPECT_EQ(h.session.counters().statements_blocked, 1u);
  }
}

TEST(SessionPolicy, AllowedQueryIsForwardedByteForByte) {
  Harness h(3);
  policy::PolicyGates gates(agent_policy(policy::AccessMode::read_write));
  h.host.gates = &gates;
  h.login();
  const auto q = MessageBuilder('Q').cstring("SELECT * FROM orders WHERE id = 1").finish();
  h.deliver(Side::client, q);
  EXPECT_EQ(h.drain(Side::backend), str(q));
}

TEST(SessionPolicy, LongStatementArrivingInPiecesIsJudgedWhole) {
  // Regression: trimming the capture buffer between receives dropped the first part
  // of any captured message longer than 8 KiB.
  Harness h(4);
  policy::PolicyGates gates(agent_policy(policy::AccessMode::read_write));
  h.host.gates = &gates;
  h.login();
  std::string sql = "SELECT md5('";
  for (int i = 0; i < 20000; ++i) sql += static_cast<char>('a' + (i * 7919) % 26);
  sql += "')";
  const auto q = MessageBuilder('Q').cstring(sql).finish();
  h.deliver(Side::client, q);
  EXPECT_EQ(h.drain(Side::backend), str(q));
}

TEST(SessionPolicy, BlockedParseIsReplacedAndTheRestOfThePipelineIsLeftToTheServer) {
  Harness h(5);
  policy::PolicyGates gates(agent_policy(policy::AccessMode::read_write));
  h.host.gates = &gates;
  h.login();
  const auto parse = MessageBuilder('P').cstring("s1").cstring("DELETE FROM orders").int16(0).finish();
  const auto bind = MessageBuilder('B').cstring("").cstring("s1").int16(0).int16(0).int16(0).finish();
  const auto execute = MessageBuilder('E').cstring("").int32(0).finish();
  const auto sync = MessageBuilder('S').finish();
  h.deliver(Side::client, concat({parse, bind, execute, sync}));
  const std::string to_server = h.drain(Side::backend);
  EXPECT_EQ(to_server.find("DELETE"), std::string::npos);
  auto sent = split_messages(to_server);
  ASSERT_EQ(sent.size(), 4u);
  EXPECT_EQ(sent[0].type, 'P');
  EXPECT_EQ(str(sent[1].body), str(std::vector<uint8_t>(bind.begin() + 5, bind.end())));
  EXPECT_EQ(sent[3].type, 'S');
  const std::string substitute = statement_text(to_server, 'P');
  BodyReader r(sent[0].body);
  std::string_view name;
  ASSERT_TRUE(r.cstring(name));
  EXPECT_EQ(name, "s1");  // the named statement fails to exist, as a blocked one must
  // The server reports the Parse error, skips Bind/Execute, answers the Sync.
  h.deliver(Side::backend, concat({server_cast_error(substitute), ready_for_query('I')}));
  auto reply = split_messages(h.drain(Side::client));
  ASSERT_EQ(reply.size(), 2u);
  std::vector<ErrorField> fields;
  ASSERT_TRUE(parse_error_fields(reply[0].body, fields));
  EXPECT_EQ(error_field(fields, 'C'), "42501");
  EXPECT_NE(error_field(fields, 'M').find("unbounded-write"), std::string_view::npos);
  EXPECT_EQ(reply[1].type, 'Z');
}

TEST(SessionPolicy, OtherServerErrorsPassThroughWhileARefusalIsPending) {
  Harness h(7);
  policy::PolicyGates gates(agent_policy(policy::AccessMode::read_write));
  h.host.gates = &gates;
  h.login();
  // In an aborted transaction the server answers the substitute with 25P02, not the
  // cast error: the client must see that, and the refusal is forgotten at ReadyForQuery.
  h.deliver(Side::client, MessageBuilder('Q').cstring("DROP TABLE orders").finish());
  h.drain(Side::backend);
  ErrorInfo aborted;
  aborted.sqlstate = "25P02";
  aborted.message = "current transaction is aborted, commands ignored until end of transaction block";
  const auto server_error = error_response(aborted);
  h.deliver(Side::backend, concat({server_error, ready_for_query('E')}));
  EXPECT_EQ(h.drain(Side::client), str(concat({server_error, ready_for_query('E')})));
  // Nothing is pending now: the next error is forwarded untouched too.
  h.deliver(Side::client, MessageBuilder('Q').cstring("SELECT 1").finish());
  h.drain(Side::backend);
  h.deliver(Side::backend, concat({server_error, ready_for_query('E')}));
  EXPECT_EQ(h.drain(Side::client), str(concat({server_error, ready_for_query('E')})));
}

TEST(SessionPolicy, BackendSessionStartsWithPinnedSettingsAndReadOnlyMode) {
  Harness h(9);
  policy::PolicyGates gates(agent_policy(policy::AccessMode::read_only));
  h.host.gates = &gates;
  h.login();
  ASSERT_EQ(h.session.state(), Session::State::ready);
  for (const char* pinned : {"default_transaction_read_only\0on", "search_path\0public",
                             "standard_conforming_strings\0on", "client_encoding\0UTF8"}) {
    const std::string needle(pinned, std::strlen(pinned) + 1 + std::strlen(pinned + std::strlen(pinned) + 1));
    EXPECT_NE(h.startup_seen.find(needle), std::string::npos) << pinned;
  }
}

TEST(SessionPolicy, UserWhoseGroupsDoNotGrantTheTargetIsRefusedAtLogin) {
  Harness h(11);
  policy::PolicyGates gates(agent_policy(policy::AccessMode::admin, {"other-target"}));
  h.host.gates = &gates;
  const std::string received = h.login();
  EXPECT_TRUE(h.host.finished);
  EXPECT_TRUE(h.host.connect_requested.empty());
  EXPECT_NE(received.find("42501"), std::string::npos);
}

TEST(SessionPolicy, FastpathFunctionCallsAreRefusedBelowAdmin) {
  Harness h(13);
  policy::PolicyGates gates(agent_policy(policy::AccessMode::read_write));
  h.host.gates = &gates;
  h.login();
  h.deliver(Side::client, MessageBuilder('F').int32(764).int16(0).int16(0).int16(0).finish());  // lo_import's OID
  const std::string to_server = h.drain(Side::backend);
  auto sent = split_messages(to_server);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].type, 'Q');  // replaced by the failing substitute: never a FunctionCall
}

}  // namespace
}  // namespace sluice::protocol
