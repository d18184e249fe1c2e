// core::tls::Stream between two in-memory peers: the handshake, records split at every
// byte, verification failures, ALPN, and the output-buffer invariant the io_uring send
// path relies on.
#include "core/tls.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_pki.h"

namespace sluice::core::tls {
namespace {

using Status = Stream::Status;

struct TempDir {
  std::string path;
  TempDir() {
    char pattern[] = "/tmp/sluice-tls-XXXXXX";
    path = mkdtemp(pattern);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

std::span<const uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// Moves `from`'s pending ciphertext to `to` in pieces of at most `piece` bytes and
// collects what `to` decrypts. Returns the last status `to` reported.
Status transfer(Stream& from, Stream& to, std::string* plaintext = nullptr, size_t piece = SIZE_MAX) {
  Status status = Status::need_input;
  for (;;) {
    std::span<const uint8_t> out = from.pending_output();
    if (out.empty()) return status;
    std::vector<uint8_t> copy(out.begin(), out.end());
    from.output_sent(copy.size());
    for (size_t at = 0; at < copy.size(); at += piece) {
      const size_t n = std::min(piece, copy.size() - at);
      to.feed(std::span<const uint8_t>(copy).subspan(at, n));
      uint8_t buffer[4096];
      size_t got = 0;
      while ((status = to.read(buffer, got)) == Status::ok) {
        if (plaintext != nullptr) plaintext->append(reinterpret_cast<char*>(buffer), got);
        if (got == 0) break;
      }
      if (status == Status::failed || status == Status::closed) return status;
    }
  }
}

// Runs the handshake to completion (or failure) in at most a few flights.
bool handshake(Stream& client, Stream& server, size_t piece = SIZE_MAX) {
  if (client.start_handshake() == Status::failed) return false;
  for (int flight = 0; flight < 6; ++flight) {
    if (transfer(client, server, nullptr, piece) == Status::failed) return false;
    if (transfer(server, client, nullptr, piece) == Status::failed) return false;
    if (client.handshake_done() && server.handshake_done()) return true;
  }
  return false;
}

class TlsStream : public ::testing::Test {
 protected:
  TempDir dir;
  test_pki::Pki pki{dir.path};

  std::shared_ptr<const Context> server_context(int min_version = TLS1_2_VERSION) {
    std::string problem;
    auto context = Context::server({pki.cert_file, pki.key_file, min_version}, problem);
    EXPECT_NE(context, nullptr) << problem;
    return context;
  }
  std::shared_ptr<const Context> client_context(const std::string& ca_file) {
    std::string problem;
    auto context = Context::client(ca_file, problem);
    EXPECT_NE(context, nullptr) << problem;
    return context;
  }
};

TEST_F(TlsStream, VerifiedHandshakeCarriesDataBothWaysWhateverTheRecordSplit) {
  for (size_t piece : {size_t{1}, size_t{7}, size_t{4096}, SIZE_MAX}) {
    SCOPED_TRACE("ciphertext fed in pieces of " + std::to_string(piece));
    Stream server(server_context(), Stream::Role::server);
    Stream client(client_context(pki.ca_file), Stream::Role::client, "localhost");
    ASSERT_TRUE(handshake(client, server, piece)) << client.error() << " / " << server.error();
    EXPECT_TRUE(server.take_handshake_completed());
    EXPECT_FALSE(server.take_handshake_completed()) << "reported once";
    EXPECT_NE(server.describe().find("TLSv1.3"), std::string::npos) << server.describe();

    std::string query(100'000, 'q');
    for (size_t i = 0; i < query.size(); ++i) query[i] = static_cast<char>('a' + i % 26);
    ASSERT_TRUE(client.write(bytes_of(query)));
    std::string received;
    EXPECT_NE(transfer(client, server, &received, piece), Status::failed) << server.error();
    EXPECT_EQ(received, query);

    ASSERT_TRUE(server.write(bytes_of("reply")));
    std::string reply;
    transfer(server, client, &reply, piece);
    EXPECT_EQ(reply, "reply");
  }
}

TEST_F(TlsStream, PlainPrefixGoesOutBeforeTheHandshake) {
  Stream server(server_context(), Stream::Role::server);
  const uint8_t answer = 'S';
  server.queue_plain_prefix({&answer, 1});
  std::span<const uint8_t> out = server.pending_output();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], 'S');
  server.output_sent(1);
  EXPECT_TRUE(server.pending_output().empty());
}

TEST_F(TlsStream, BytesBeingSentStayPutWhileMoreIsWritten) {
  Stream server(server_context(), Stream::Role::server);
  Stream client(client_context(pki.ca_file), Stream::Role::client, "localhost");
  ASSERT_TRUE(handshake(client, server));
  ASSERT_TRUE(server.write(bytes_of(std::string(3000, 'a'))));
  std::span<const uint8_t> in_flight = server.pending_output();
  const std::vector<uint8_t> snapshot(in_flight.begin(), in_flight.end());
  const uint8_t* where = in_flight.data();
  ASSERT_TRUE(server.write(bytes_of(std::string(200'000, 'b'))));  // would move a growing buffer
  EXPECT_EQ(std::vector<uint8_t>(where, where + snapshot.size()), snapshot);
  // A partial send resumes where it stopped; the later bytes follow.
  server.output_sent(100);
  EXPECT_EQ(server.pending_output().data(), where + 100);
  EXPECT_GT(server.output_bytes(), 200'000u);
  std::string received;
  client.feed(std::span<const uint8_t>(snapshot).first(100));
  uint8_t scratch[64];
  size_t got = 0;
  ASSERT_EQ(client.read(scratch, got), Status::need_input) << "a partial record waits for the rest";
  EXPECT_NE(transfer(server, client, &received), Status::failed) << client.error();
  EXPECT_EQ(received, std::string(3000, 'a') + std::string(200'000, 'b'));
}

TEST_F(TlsStream, UntrustedCertificateFailsWithAReason) {
  TempDir other_dir;
  test_pki::Pki other(other_dir.path, "another CA");
  Stream server(server_context(), Stream::Role::server);
  Stream client(client_context(other.ca_file), Stream::Role::client, "localhost");
  EXPECT_FALSE(handshake(client, server));
  EXPECT_NE(client.error().find("certificate verify failed"), std::string::npos) << client.error();
}

TEST_F(TlsStream, WrongHostNameFails) {
  Stream server(server_context(), Stream::Role::server);
  Stream client(client_context(pki.ca_file), Stream::Role::client, "db.example.com");
  EXPECT_FALSE(handshake(client, server));
  EXPECT_NE(client.error().find("certificate verify failed"), std::string::npos) << client.error();
}

TEST_F(TlsStream, AlpnMustBePostgresWhenOffered) {
  auto offer = [&](const std::vector<uint8_t>& protocols) {
    auto server = std::make_unique<Stream>(server_context(), Stream::Role::server);
    std::string problem;
    auto context = Context::client(pki.ca_file, problem);
    SSL_CTX_set_alpn_protos(context->native(), protocols.data(), static_cast<unsigned>(protocols.size()));
    Stream client(context, Stream::Role::client, "localhost");
    const bool ok = handshake(client, *server);
    return std::make_pair(ok, ok ? server->alpn() : server->error());
  };
  const std::vector<uint8_t> postgres = {10, 'p', 'o', 's', 't', 'g', 'r', 'e', 's', 'q', 'l'};
  const std::vector<uint8_t> http = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  EXPECT_EQ(offer(postgres), std::make_pair(true, std::string("postgresql")));
  auto refused = offer(http);
  EXPECT_FALSE(refused.first);
  EXPECT_NE(refused.second.find("no application protocol"), std::string::npos) << refused.second;
  // No ALPN at all is fine on the SSLRequest path (libpq before 17 sends none).
  Stream server(server_context(), Stream::Role::server);
  Stream client(client_context(pki.ca_file), Stream::Role::client, "localhost");
  ASSERT_TRUE(handshake(client, server));
  EXPECT_EQ(server.alpn(), "");
}

TEST_F(TlsStream, MinimumVersionIsEnforced) {
  Stream server(server_context(TLS1_3_VERSION), Stream::Role::server);
  std::string problem;
  auto context = Context::client(pki.ca_file, problem);
  SSL_CTX_set_max_proto_version(context->native(), TLS1_2_VERSION);
  Stream client(context, Stream::Role::client, "localhost");
  EXPECT_FALSE(handshake(client, server));
  EXPECT_NE(server.error().find("TLS handshake failed"), std::string::npos) << server.error();
}

TEST_F(TlsStream, CloseNotifyIsReportedAsClosed) {
  Stream server(server_context(), Stream::Role::server);
  Stream client(client_context(pki.ca_file), Stream::Role::client, "localhost");
  ASSERT_TRUE(handshake(client, server));
  client.shutdown();
  EXPECT_EQ(transfer(client, server), Status::closed);
}

TEST_F(TlsStream, GarbageInsteadOfAClientHelloFails) {
  Stream server(server_context(), Stream::Role::server);
  const std::string garbage = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  server.feed(bytes_of(garbage));
  uint8_t out[64];
  size_t got = 0;
  EXPECT_EQ(server.read(out, got), Status::failed);
  EXPECT_NE(server.error().find("TLS handshake failed"), std::string::npos) << server.error();
  EXPECT_EQ(server.read(out, got), Status::failed) << "a failed stream stays failed";
}

TEST_F(TlsStream, ServerFilesAreCheckedWithClearReasons) {
  std::string problem;
  EXPECT_EQ(Context::server({pki.cert_file, dir.path + "/missing.key"}, problem), nullptr);
  EXPECT_NE(problem.find("missing.key"), std::string::npos) << problem;

  chmod(pki.key_file.c_str(), 0644);
  EXPECT_EQ(Context::server({pki.cert_file, pki.key_file}, problem), nullptr);
  EXPECT_NE(problem.find("readable by every user"), std::string::npos) << problem;
  chmod(pki.key_file.c_str(), 0600);

  pki.issue("other", "other", "DNS:other");
  EXPECT_EQ(Context::server({pki.cert_file, dir.path + "/other.key"}, problem), nullptr);
  EXPECT_NE(problem.find("does not match"), std::string::npos) << problem;

  EXPECT_EQ(Context::server({pki.key_file, pki.key_file}, problem), nullptr);
  EXPECT_NE(problem.find("cannot load cert_file"), std::string::npos) << problem;

  auto good = Context::server({pki.cert_file, pki.key_file}, problem);
  ASSERT_NE(good, nullptr) << problem;
  EXPECT_NE(good->description().find("CN=localhost"), std::string::npos) << good->description();
}

// The kernel-TLS offer where the kernel cannot take it (here: not a TCP socket, so the
// "tls" upper layer cannot attach; on a kernel without CONFIG_TLS every socket is like
// this): OpenSSL asks, is refused, and the whole connection stays in userspace.
TEST_F(TlsStream, KernelTlsOfferTheKernelRefusesStaysInUserspace) {
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  for (int max_version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    SCOPED_TRACE(max_version == TLS1_3_VERSION ? "TLS 1.3" : "TLS 1.2");
    Stream server(server_context(), Stream::Role::server);
    server.offer_kernel_tls(pair[0]);
    EXPECT_TRUE(server.kernel_tls_offered());
    auto context = client_context(pki.ca_file);
    SSL_CTX_set_max_proto_version(context->native(), max_version);
    Stream client(context, Stream::Role::client, "localhost");
    ASSERT_TRUE(handshake(client, server)) << client.error() << " / " << server.error();
    EXPECT_FALSE(server.kernel_send());
    EXPECT_FALSE(server.kernel_receive());
    EXPECT_STREQ(server.records_path(), "userspace");
    // OpenSSL did offer the keys (so this path was exercised), and the reason is kept.
    EXPECT_NE(server.kernel_tls_problem().find("TCP_ULP"), std::string::npos) << server.kernel_tls_problem();

    ASSERT_TRUE(client.write(bytes_of("query")));
    std::string received;
    transfer(client, server, &received);
    EXPECT_EQ(received, "query");
    ASSERT_TRUE(server.write(bytes_of("reply")));
    std::string reply;
    transfer(server, client, &reply);
    EXPECT_EQ(reply, "reply");
  }
  // Nothing went to the socket: every byte stayed with the owner.
  char probe;
  EXPECT_EQ(recv(pair[1], &probe, 1, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EAGAIN);
  close(pair[0]);
  close(pair[1]);
}

// A connected loopback TCP pair.
struct TcpPair {
  int server = -1, client = -1;
  TcpPair() {
    const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 && listen(listener, 1) == 0 &&
        getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
      client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (connect(client, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0)
        server = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    }
    close(listener);
  }
  ~TcpPair() {
    if (server >= 0) close(server);
    if (client >= 0) close(client);
  }
};

// The server side as the gateway runs it: one receive at a time during the handshake
// (socket_idle), output sent as the stream hands it over.
bool serve_handshake(Stream& server, int fd) {
  while (!server.handshake_done()) {
    uint8_t buffer[16 * 1024];
    const ssize_t n = recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) return false;
    server.feed({buffer, static_cast<size_t>(n)}, /*socket_idle=*/true);
    size_t got = 0;
    uint8_t none[1];
    const Status status = server.read(std::span<uint8_t>(none, 0), got);
    server.feed({});
    if (status == Status::failed) return false;
    for (auto out = server.pending_output(); !out.empty(); out = server.pending_output()) {
      if (send(fd, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) return false;
      server.output_sent(out.size());
    }
  }
  return true;
}

// Where the kernel has TLS (CONFIG_TLS): after the handshake the kernel frames what
// sluice sends (plaintext on the socket), and, where OpenSSL hands over receive keys
// (TLS 1.3 with OpenSSL 3.2 and later; Debian 12's 3.0 hands send keys only), what it
// receives, the client's close_notify then arriving as a control record. Skipped, not
// passed, on kernels without it.
TEST_F(TlsStream, KernelTlsTakesWhatOpenSslHandsOverWhereTheKernelHasIt) {
  std::string why;
  if (!probe_kernel_tls(why)) GTEST_SKIP() << "kernel TLS unavailable here: " << why;
  for (int max_version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    SCOPED_TRACE(max_version == TLS1_3_VERSION ? "TLS 1.3" : "TLS 1.2");
    TcpPair sockets;
    ASSERT_GE(sockets.server, 0);
    auto client_ctx = client_context(pki.ca_file);
    SSL_CTX_set_max_proto_version(client_ctx->native(), max_version);
    // The client: stock OpenSSL on a blocking socket, on its own thread. It writes only
    // once the server says its handshake is done (so nothing trails the Finished).
    std::promise<void> server_ready;
    auto client_result = std::async(std::launch::async, [&, ready = server_ready.get_future()]() mutable {
      SSL* ssl = SSL_new(client_ctx->native());
      SSL_set_fd(ssl, sockets.client);
      expect_peer_name(ssl, "localhost");
      std::string result;
      if (SSL_connect(ssl) != 1) {
        result = "client handshake failed";
      } else {
        ready.wait();
        char reply[5] = {};
        if (SSL_write(ssl, "query", 5) != 5 || SSL_read(ssl, reply, 5) != 5) result = "client I/O failed";
        else result = std::string(reply, 5);
        SSL_shutdown(ssl);
      }
      SSL_free(ssl);
      return result;
    });
    Stream server(server_context(), Stream::Role::server);
    server.offer_kernel_tls(sockets.server);
    const bool handshook = serve_handshake(server, sockets.server);
    server_ready.set_value();
    ASSERT_TRUE(handshook) << server.error();
    EXPECT_TRUE(server.kernel_send()) << server.kernel_tls_problem();
    if (server.kernel_receive()) {
      EXPECT_EQ(max_version, TLS1_3_VERSION) << "TLS 1.2 receives stay in userspace";
    }
    EXPECT_EQ(std::string(server.records_path()).rfind("kernel", 0), 0u) << server.records_path();

    // Receive: plaintext straight from the socket (kernel), or records through the stream.
    std::string query;
    char buffer[64];
    while (query.size() < 5) {
      const ssize_t n = recv(sockets.server, buffer, sizeof buffer, 0);
      ASSERT_GT(n, 0) << std::strerror(errno);
      if (server.kernel_receive()) {
        query.append(buffer, static_cast<size_t>(n));
      } else {
        server.feed({reinterpret_cast<uint8_t*>(buffer), static_cast<size_t>(n)});
        uint8_t plain[64];
        size_t got = 0;
        while (server.read(plain, got) == Status::ok && got > 0) query.append(reinterpret_cast<char*>(plain), got);
        server.feed({});
      }
    }
    EXPECT_EQ(query, "query");
    // Send: plaintext on the socket; the kernel frames it.
    ASSERT_EQ(send(sockets.server, "reply", 5, MSG_NOSIGNAL), 5);
    EXPECT_EQ(client_result.get(), "reply");
    if (server.kernel_receive()) {
      // The client's close_notify: a control record a plain receive cannot take.
      EXPECT_EQ(recv(sockets.server, buffer, sizeof buffer, 0), -1);
      EXPECT_EQ(errno, EIO);
      uint8_t plain[64];
      size_t got = 0;
      EXPECT_EQ(server.read_kernel_control_record(plain, got), Status::closed) << server.error();
    }
  }
}

}  // namespace
}  // namespace sluice::core::tls
