// libFuzzer target for the session state machine: arbitrary bytes from the client
// before login, or from either peer after a completed login, in arbitrary pieces.
// Build: clang++-14 -std=c++20 -fsanitize=fuzzer,address,undefined -I. protocol/session_fuzz.cc
//        protocol/session.cc protocol/wire.cc protocol/scram.cc core/out_queue.cc
//        core/timer_wheel.cc core/log.cc -lcrypto
#include <cstring>
#include <vector>

#include "core/log.h"
#include "protocol/session.h"

namespace {
using namespace sluice;
using protocol::Side;

class Pool final : public core::BufferPool {
 public:
  void retain(core::BufferIndex) override { ++refs; }
  void release(core::BufferIndex) override { --refs; }
  size_t buffer_size() const override { return 16384; }
  long refs = 0;
};

class Host final : public protocol::SessionHost {
 public:
  void flush(Side) override {}
  void set_reading(Side, bool) override {}
  void connect_backend(const protocol::Target&) override { connect = true; }
  void finish() override { finished = true; }
  void route_cancel(uint32_t, uint32_t) override {}
  void cancel_backend_query(const protocol::Target&, uint32_t, uint32_t) override {}
  core::BufferPool* buffer_pool() override { return &pool; }
  core::TimerWheel& timers() override { return wheel; }
  Pool pool;
  core::TimerWheel wheel{10, 64};
  bool connect = false;
  bool finished = false;
};

const protocol::Settings& settings() {
  static const protocol::Settings s = [] {
    protocol::Settings st;
    st.gateway.max_message_bytes = 1 << 16;
    st.gateway.send_queue_bytes = 1 << 16;
    protocol::Target t;
    t.name = "app";
    t.user = "u";
    t.database = "app";
    t.password = protocol::Secret("pw");
    t.sslmode = protocol::Target::SslMode::disable;  // this host has no TLS layer
    st.targets.push_back(t);
    protocol::GatewayUser user;
    user.name = "alice";
    const uint8_t salt[16] = {1};
    user.verifier = protocol::scram::make_verifier("pw", 1, salt);  // 1 iteration: fast enough to fuzz
    st.users.push_back(user);
    return st;
  }();
  return s;
}

void feed(protocol::Session& session, Host& host, Side side, const uint8_t* data, size_t size, uint8_t piece) {
  const size_t step = 1 + piece % 64;
  for (size_t pos = 0; pos < size && !host.finished; pos += step) {
    const uint32_t n = static_cast<uint32_t>(std::min(step, size - pos));
    std::vector<uint8_t> copy(data + pos, data + pos + n);
    const core::Chunk chunk{copy.data(), n, 0};
    if (side == Side::client) session.on_client_data(chunk);
    else session.on_backend_data(chunk);
  }
  // Drain outputs as a host would.
  for (Side s : {Side::client, Side::backend}) session.out(s).consume(session.out(s).queued_bytes());
}

std::vector<uint8_t> drain(protocol::Session& session, Side side) {
  std::vector<uint8_t> out;
  iovec iov[64];
  const int n = session.out(side).prepare_iovecs(iov, 64);
  for (int i = 0; i < n; ++i) {
    const auto* p = static_cast<const uint8_t*>(iov[i].iov_base);
    out.insert(out.end(), p, p + iov[i].iov_len);
  }
  session.out(side).consume(out.size());
  return out;
}

// Client SCRAM login + cleartext backend login, as fast as possible.
bool login(protocol::Session& session, Host& host) {
  std::vector<uint8_t> bytes = protocol::startup_message({{"user", "alice"}, {"database", "app"}});
  feed(session, host, Side::client, bytes.data(), bytes.size(), 255);
  protocol::scram::ClientExchange client("pw");
  bytes = protocol::sasl_initial_response("SCRAM-SHA-256", client.client_first());
  feed(session, host, Side::client, bytes.data(), bytes.size(), 255);
  std::vector<uint8_t> out = drain(session, Side::client);
  if (out.size() < 9) return false;
  std::string final_message;
  if (client.on_server_first(std::string(out.begin() + 9, out.end()), final_message) !=
      protocol::scram::Step::continue_exchange)
    return false;
  bytes = protocol::sasl_response(final_message);
  feed(session, host, Side::client, bytes.data(), bytes.size(), 255);
  if (!host.connect) return false;
  session.on_backend_connected(0);
  bytes = protocol::MessageBuilder('R').int32(3).finish();
  for (auto m : {protocol::authentication_ok(), protocol::backend_key_data(1, 2), protocol::ready_for_query('I')})
    bytes.insert(bytes.end(), m.begin(), m.end());
  feed(session, host, Side::backend, bytes.data(), bytes.size(), 255);
  return session.state() == protocol::Session::State::ready;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool quiet = [] {
    core::set_log_level(core::LogLevel::error);
    return true;
  }();
  (void)quiet;
  if (size < 2) return 0;
  const uint8_t mode = data[0] % 3;
  const uint8_t piece = data[1];
  data += 2;
  size -= 2;
  protocol::scram::Key mock{};
  Host host;
  {
    protocol::Session session(settings(), host, mock, 7, 9, "fuzz");
    if (mode == 0) {
      feed(session, host, Side::client, data, size, piece);  // startup, SSLRequest, auth
    } else if (login(session, host)) {
      feed(session, host, mode == 1 ? Side::client : Side::backend, data, size, piece);
      if (!host.finished) session.on_backend_closed(0);
    }
    for (int i = 0; i < 3; ++i) host.wheel.advance();
    session.out(Side::client).clear();
    session.out(Side::backend).clear();
  }
  if (host.pool.refs != 0) __builtin_trap();  // every buffer reference taken is released
  return 0;
}
