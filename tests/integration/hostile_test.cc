// Hostile protocol input (shared/reference/hostile-inputs.md): malformed startup
// packets, bad lengths, unknown or out-of-state message types, SSLRequest buffer
// stuffing, forged cancel keys, stalled handshakes. Each is answered or closed, never
// crashes sluiced, and sluiced keeps serving afterwards.
#include <gtest/gtest.h>

#include <thread>

#include "tests/integration/fixture.h"

namespace sluice::it {
namespace {

using Clock = std::chrono::steady_clock;

std::string field(const std::map<char, std::string>& fields, char code) {
  const auto it = fields.find(code);
  return it == fields.end() ? "" : it->second;
}

// Reads everything until the peer closes; the ErrorResponses seen on the way.
struct Outcome {
  bool closed = false;
  std::vector<std::map<char, std::string>> errors;
  std::vector<char> types;
};

Outcome drain(RawClient& c, std::chrono::milliseconds timeout = 5s) {
  Outcome out;
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    Message m;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    const ReadStatus st = c.read_message(m, std::max(left, 1ms));
    if (st == ReadStatus::closed) {
      out.closed = true;
      break;
    }
    if (st == ReadStatus::timeout) break;
    out.types.push_back(m.type);
    if (m.type == 'E') out.errors.push_back(parse_fields(m.body));
  }
  return out;
}

class Hostile : public GatewayTest {
 protected:
  SluicedOptions options() override {
    SluicedOptions o;
    o.handshake_timeout = "2s";
    return o;
  }

  // A logged-in raw session through sluice.
  void logged_in(RawClient& c) { ASSERT_TRUE(login(c, gw().port(), "alice", kAlicePassword, "app")); }

  // After a violation in the ready state: FATAL 08P01, then the connection closes.
  void expect_fatal_protocol_violation(RawClient& c, const std::string& what) {
    const Outcome o = drain(c);
    EXPECT_TRUE(o.closed) << what << ": connection not closed";
    ASSERT_FALSE(o.errors.empty()) << what << ": closed without an ErrorResponse";
    EXPECT_EQ(field(o.errors.back(), 'S'), "FATAL") << what;
    EXPECT_EQ(field(o.errors.back(), 'C'), "08P01") << what << ": " << field(o.errors.back(), 'M');
  }
};

TEST_F(Hostile, BadStartupLengthsAreClosed) {
  const std::pair<std::string, std::string> cases[] = {
      {"length 0", wire::be32(0)},
      {"length 3", wire::be32(3)},
      {"length -5", wire::be32(-5)},
      {"length 100000", wire::be32(100000) + wire::be32(0x00030000) + std::string(2000, 'u')},
      {"length 0x7fffffff", wire::be32(0x7fffffff) + wire::be32(0x00030000)},
      {"a regular message instead of startup", wire::query("SELECT 1")},
  };
  for (const auto& [what, bytes] : cases) {
    SCOPED_TRACE(what);
    RawClient c;
    ASSERT_TRUE(c.connect(gw().port()));
    c.send(bytes);
    const Outcome o = drain(c);
    EXPECT_TRUE(o.closed) << "not closed within 5 s";
    for (const auto& e : o.errors) EXPECT_EQ(field(e, 'C'), "08P01") << field(e, 'M');
    ASSERT_TRUE(gw().running()) << "sluiced died";
  }
  EXPECT_TRUE(gateway_serves());
}

TEST_F(Hostile, MalformedStartupPacketsAreRefused) {
  const std::pair<std::string, std::string> cases[] = {
      // No terminating NUL after the last parameter.
      {"missing terminator", [] {
         std::string p = wire::startup({{"user", "alice"}, {"database", "app"}});
         p.pop_back();
         p[3] = static_cast<char>(p[3] - 1);
         return p;
       }()},
      {"no user", wire::startup({{"database", "app"}})},
      {"value without NUL", wire::be32(4 + 4 + 4) + wire::be32(0x00030000) + "user"},
      {"empty option name", wire::startup({{"user", "alice"}, {"database", "app"}, {"", "x"}})},
  };
  for (const auto& [what, bytes] : cases) {
    SCOPED_TRACE(what);
    RawClient c;
    ASSERT_TRUE(c.connect(gw().port()));
    c.send(bytes);
    const Outcome o = drain(c);
    // Refused before authentication starts: an error and/or a close, never an
    // authentication request.
    for (char t : o.types) EXPECT_NE(t, 'R') << "a malformed startup packet was accepted";
    EXPECT_TRUE(o.closed) << "not closed";
    ASSERT_TRUE(gw().running()) << "sluiced died";
  }
  EXPECT_TRUE(gateway_serves());
}

TEST_F(Hostile, UnknownProtocolVersionIs0A000) {
  RawClient c;
  ASSERT_TRUE(c.connect(gw().port()));
  c.send(wire::startup({{"user", "alice"}, {"database", "app"}}, 0x00090000));  // 9.0
  const Outcome o = drain(c);
  ASSERT_FALSE(o.errors.empty()) << "no ErrorResponse for protocol 9.0";
  EXPECT_EQ(field(o.errors[0], 'C'), "0A000") << field(o.errors[0], 'M');
  EXPECT_EQ(field(o.errors[0], 'S'), "FATAL");
  EXPECT_TRUE(o.closed);
  // Protocol 2.0 is gone too.
  RawClient c2;
  ASSERT_TRUE(c2.connect(gw().port()));
  c2.send(wire::startup({{"user", "alice"}, {"database", "app"}}, 0x00020000));
  const Outcome o2 = drain(c2);
  ASSERT_FALSE(o2.errors.empty());
  EXPECT_EQ(field(o2.errors[0], 'C'), "0A000");
  EXPECT_TRUE(gateway_serves());
}

TEST_F(Hostile, BadMessageLengthsAfterLogin) {
  {
    RawClient c;
    logged_in(c);
    c.send(std::string("Q") + wire::be32(2));
    expect_fatal_protocol_violation(c, "Q with length 2");
  }
  {
    RawClient c;
    logged_in(c);
    c.send(std::string("Q") + wire::be32(0));
    expect_fatal_protocol_violation(c, "Q with length 0");
  }
  {
    // Must be refused at the header, not after waiting for 2 GB.
    RawClient c;
    logged_in(c);
    const auto start = Clock::now();
    c.send(std::string("Q") + wire::be32(0x7fffffff) + "SELECT 1");
    expect_fatal_protocol_violation(c, "Q with length 0x7fffffff");
    EXPECT_LT(Clock::now() - start, 4s);
  }
  {
    RawClient c;
    logged_in(c);
    c.send(std::string("d") + wire::be32(-1));
    expect_fatal_protocol_violation(c, "CopyData with length -1 outside COPY");
  }
  EXPECT_TRUE(gateway_serves());
}

TEST_F(Hostile, UnknownOrOutOfStateMessageTypes) {
  const std::pair<std::string, std::string> cases[] = {
      {"type '!'", wire::message('!', "")},
      {"type 0 (a second StartupMessage)", wire::startup({{"user", "alice"}, {"database", "app"}})},
      {"type 0xff", wire::message('\xff', "abc")},
      {"PasswordMessage when ready", wire::message('p', std::string("secret") + '\0')},
  };
  for (const auto& [what, bytes] : cases) {
    SCOPED_TRACE(what);
    RawClient c;
    logged_in(c);
    c.send(bytes);
    expect_fatal_protocol_violation(c, what);
  }
  EXPECT_TRUE(gateway_serves());
}

TEST_F(Hostile, SslRequestWithStuffedBytesIs08P01) {
  RawClient c;
  ASSERT_TRUE(c.connect(gw().port()));
  // SSLRequest and a StartupMessage in one write: the startup bytes arrived before the
  // answer to SSLRequest, so a man in the middle could have injected them.
  c.send(wire::ssl_request() + wire::startup({{"user", "alice"}, {"database", "app"}}));
  char answer = 0;
  ASSERT_EQ(c.read_byte(answer), ReadStatus::message) << "no answer at all";
  std::map<char, std::string> error;
  if (answer == 'N') {
    const Outcome o = drain(c);
    ASSERT_FALSE(o.errors.empty()) << "no ErrorResponse after 'N'";
    error = o.errors[0];
    for (char t : o.types) EXPECT_NE(t, 'R') << "authentication started on stuffed bytes";
    EXPECT_TRUE(o.closed);
  } else {
    ASSERT_EQ(answer, 'E') << "unexpected answer byte " << static_cast<int>(answer);
    // An ErrorResponse instead of 'N': read its remainder.
    std::string rest;
    char b = 0;
    for (int i = 0; i < 4 && c.read_byte(b) == ReadStatus::message; ++i) rest += b;
    ASSERT_EQ(rest.size(), 4u);
    const int32_t len = (static_cast<uint8_t>(rest[0]) << 24) | (static_cast<uint8_t>(rest[1]) << 16) |
                        (static_cast<uint8_t>(rest[2]) << 8) | static_cast<uint8_t>(rest[3]);
    std::string body;
    for (int i = 0; i < len - 4 && c.read_byte(b) == ReadStatus::message; ++i) body += b;
    error = parse_fields(body);
    EXPECT_TRUE(c.wait_closed(5s));
  }
  EXPECT_EQ(field(error, 'C'), "08P01") << field(error, 'M');
  EXPECT_EQ(field(error, 'S'), "FATAL");

  // A well-behaved SSLRequest (wait for the answer, then start up) still works.
  RawClient ok;
  ASSERT_TRUE(ok.connect(gw().port()));
  ok.send(wire::ssl_request());
  ASSERT_EQ(ok.read_byte(answer), ReadStatus::message);
  ASSERT_EQ(answer, 'N');  // no TLS configured in this test
  const RawClient::StartupResult r = ok.startup("alice", "app", kAlicePassword);
  EXPECT_TRUE(r.ready) << field(r.error, 'M');
}

TEST_F(Hostile, ForgedCancelKeysDoNothing) {
  RawClient victim;
  logged_in(victim);
  const int32_t pid = victim.backend_pid();
  const int32_t key = victim.backend_key();
  ASSERT_TRUE(victim.send(wire::query("SELECT pg_sleep(1.5), 'survived'")));
  std::this_thread::sleep_for(200ms);
  const std::pair<int32_t, int32_t> forged[] = {
      {pid, key ^ 1}, {pid, 0}, {static_cast<int32_t>(static_cast<uint32_t>(pid) + 1), key},
      {0, 0}, {-1, -1}, {0x7fffffff, key},
  };
  for (const auto& [p, k] : forged) {
    RawClient c;
    ASSERT_TRUE(c.connect(gw().port()));
    c.send(wire::cancel_request(p, k));
    const Outcome o = drain(c, 3s);
    EXPECT_TRUE(o.closed) << "cancel connection left open";
    EXPECT_TRUE(o.types.empty()) << "a CancelRequest got a reply";
  }
  // The real backend's pid with sluice's key: sluice's keys must not be PostgreSQL's.
  {
    Conn su(pg().superuser_conninfo());
    const std::string backend_pid = query_value(
        su, "SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(1.5)%' AND state = 'active'");
    if (!backend_pid.empty()) {
      RawClient c;
      ASSERT_TRUE(c.connect(gw().port()));
      c.send(wire::cancel_request(std::stoi(backend_pid), key));
      drain(c, 3s);
    }
  }
  const std::vector<Message> reply = victim.read_until_ready(1, 10s);
  EXPECT_EQ(first_error_code(reply), "") << "the query was cancelled by a forged key";
  ASSERT_FALSE(reply.empty());
  EXPECT_EQ(reply.back().type, 'Z');
  bool survived = false;
  for (const auto& m : reply) survived |= m.type == 'D' && m.body.find("survived") != std::string::npos;
  EXPECT_TRUE(survived);

  // The genuine key still works.
  ASSERT_TRUE(victim.send(wire::query("SELECT pg_sleep(20)")));
  std::this_thread::sleep_for(200ms);
  RawClient c;
  ASSERT_TRUE(c.connect(gw().port()));
  c.send(wire::cancel_request(pid, key));
  const auto start = Clock::now();
  const std::vector<Message> cancelled = victim.read_until_ready(1, 5s);
  EXPECT_EQ(first_error_code(cancelled), "57014");
  EXPECT_LT(Clock::now() - start, 5s);
  EXPECT_TRUE(gateway_serves());
}

TEST_F(Hostile, StalledHandshakesAreClosedByTheDeadline) {
  // Nothing at all, half a startup packet, and a login stopped mid-SCRAM (slowloris).
  RawClient silent, partial, mid_auth;
  ASSERT_TRUE(silent.connect(gw().port()));
  ASSERT_TRUE(partial.connect(gw().port()));
  partial.send(wire::startup({{"user", "alice"}, {"database", "app"}}).substr(0, 10));
  ASSERT_TRUE(mid_auth.connect(gw().port()));
  mid_auth.send(wire::startup({{"user", "alice"}, {"database", "app"}}));
  Message m;
  ASSERT_EQ(mid_auth.read_message(m), ReadStatus::message);
  EXPECT_EQ(m.type, 'R');
  const auto start = Clock::now();
  // handshake_timeout is 2 s; allow slack for timer granularity.
  EXPECT_TRUE(silent.wait_closed(6s)) << "silent connection still open";
  EXPECT_TRUE(partial.wait_closed(6s)) << "partial startup still open";
  EXPECT_TRUE(mid_auth.wait_closed(6s)) << "stalled SCRAM exchange still open";
  EXPECT_LT(Clock::now() - start, 6s);
  EXPECT_TRUE(gateway_serves());
}

TEST_F(Hostile, OversizedAndInconsistentAuthMessages) {
  {
    // A SASLInitialResponse far larger than any real one.
    RawClient c;
    ASSERT_TRUE(c.connect(gw().port()));
    c.send(wire::startup({{"user", "alice"}, {"database", "app"}}));
    Message m;
    ASSERT_EQ(c.read_message(m), ReadStatus::message);
    c.send(wire::message('p', std::string("SCRAM-SHA-256") + '\0' + wire::be32(200000) + std::string(200000, 'n')));
    const Outcome o = drain(c);
    EXPECT_TRUE(o.closed);
    for (char t : o.types) EXPECT_NE(t, 'Z');
  }
  {
    // The declared SASL data length disagrees with the message length.
    RawClient c;
    ASSERT_TRUE(c.connect(gw().port()));
    c.send(wire::startup({{"user", "alice"}, {"database", "app"}}));
    Message m;
    ASSERT_EQ(c.read_message(m), ReadStatus::message);
    c.send(wire::message('p', std::string("SCRAM-SHA-256") + '\0' + wire::be32(1000) + "n,,n=,r=abc"));
    const Outcome o = drain(c);
    EXPECT_TRUE(o.closed);
    for (char t : o.types) EXPECT_NE(t, 'Z');
    for (const auto& e : o.errors) EXPECT_TRUE(field(e, 'C') == "08P01" || field(e, 'C') == "28P01") << field(e, 'C');
  }
  {
    // An unknown mechanism.
    RawClient c;
    ASSERT_TRUE(c.connect(gw().port()));
    c.send(wire::startup({{"user", "alice"}, {"database", "app"}}));
    Message m;
    ASSERT_EQ(c.read_message(m), ReadStatus::message);
    const std::string first = "n,,n=,r=abc";
    c.send(wire::message('p', std::string("SCRAM-SHA-1") + '\0' + wire::be32(static_cast<int32_t>(first.size())) + first));
    const Outcome o = drain(c);
    EXPECT_TRUE(o.closed);
    for (char t : o.types) EXPECT_NE(t, 'Z');
  }
  EXPECT_TRUE(gateway_serves());
}

TEST_F(Hostile, BindDeclaringMoreParametersThanItCarries) {
  RawClient c;
  logged_in(c);
  // Bind claiming 65535 parameters with no parameter bytes at all.
  const std::string bind_body = std::string("\0\0", 2) + wire::be16(0) + wire::be16(static_cast<int16_t>(0xffff));
  c.send(wire::parse("", "SELECT 1") + wire::message('B', bind_body) + wire::execute("", 0) + wire::sync());
  Outcome o;
  for (Message m; !o.closed;) {
    const ReadStatus st = c.read_message(m, 5s);
    ASSERT_NE(st, ReadStatus::timeout) << "neither ReadyForQuery nor close";
    o.closed = st == ReadStatus::closed;
    if (o.closed) break;
    o.types.push_back(m.type);
    if (m.type == 'E') o.errors.push_back(parse_fields(m.body));
    if (m.type == 'Z') break;
  }
  ASSERT_FALSE(o.errors.empty()) << "no error for a Bind whose counts disagree with its bytes";
  EXPECT_EQ(field(o.errors[0], 'C'), "08P01");
  // PostgreSQL answers a non-fatal ERROR and stays ready; sluice may instead treat the
  // malformed Bind as a protocol violation and close. Either way it survives.
  if (!o.closed) {
    EXPECT_EQ(o.types.back(), 'Z');
  }
  EXPECT_TRUE(gateway_serves());
}

TEST_F(Hostile, StillServingAfterEverything) {
  // Everything above again, back to back on one sluiced, then a normal session.
  for (int round = 0; round < 3; ++round) {
    for (const std::string& bytes :
         {wire::be32(0), wire::be32(3), wire::be32(100000) + std::string(100, 'x'),
          wire::startup({{"user", "alice"}}, 0x00090000), wire::ssl_request() + wire::query("x"),
          wire::cancel_request(1, 2), std::string(1000, '\0'), std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n")}) {
      RawClient c;
      ASSERT_TRUE(c.connect(gw().port()));
      c.send(bytes);
      drain(c, 3s);
    }
    RawClient c;
    logged_in(c);
    c.send(std::string("Q") + wire::be32(0x7fffffff));
    drain(c, 3s);
  }
  ASSERT_TRUE(gw().running());
  EXPECT_TRUE(gateway_serves());
}

}  // namespace
}  // namespace sluice::it
