#include "core/tls.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace sluice::core::tls {
namespace {

// The oldest OpenSSL error on this thread's queue, as one line; clears the queue.
std::string openssl_reason() {
  std::string out;
  unsigned long code = 0;
  while ((code = ERR_get_error()) != 0) {
    if (out.empty()) {
      char text[256];
      ERR_error_string_n(code, text, sizeof text);
      const char* reason = ERR_reason_error_string(code);
      out = reason != nullptr ? reason : text;
    }
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

Stream* stream_of(BIO* bio) { return static_cast<Stream*>(BIO_get_data(bio)); }

int ring_bio_write(BIO* bio, const char* data, int size) { return stream_of(bio)->bio_write(data, size); }
int ring_bio_read(BIO* bio, char* out, int size) { return stream_of(bio)->bio_read(out, size); }
long ring_bio_ctrl(BIO*, int command, long, void*) {
  // OpenSSL flushes after each flight; the bytes are already in our buffer.
  return command == BIO_CTRL_FLUSH ? 1 : 0;
}
int ring_bio_create(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

// The BIO method shared by every stream (built once, never freed).
BIO_METHOD* ring_bio_method() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "sluice io_uring");
    BIO_meth_set_write(m, ring_bio_write);
    BIO_meth_set_read(m, ring_bio_read);
    BIO_meth_set_ctrl(m, ring_bio_ctrl);
    BIO_meth_set_create(m, ring_bio_create);
    return m;
  }();
  return method;
}

// ALPN: a client that offers protocols must offer PostgreSQL's (as PostgreSQL 17 does);
// a client offering none is fine on the SSLRequest path (direct TLS checks later).
int select_alpn(SSL*, const unsigned char** out, unsigned char* out_length, const unsigned char* offered,
                unsigned int offered_length, void*) {
  unsigned int i = 0;
  while (i < offered_length) {
    const unsigned int length = offered[i];
    if (length == 0 || i + 1 + length > offered_length) break;
    if (std::string_view(reinterpret_cast<const char*>(offered + i + 1), length) == kPostgresAlpn) {
      *out = offered + i + 1;
      *out_length = static_cast<unsigned char>(length);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + length;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;  // no_application_protocol
}

std::string asn1_time_text(const ASN1_TIME* time) {
  tm t{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &t) != 1) return "?";
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d", &t);
  return text;
}

std::string certificate_description(SSL_CTX* ctx) {
  X509* cert = SSL_CTX_get0_certificate(ctx);
  if (cert == nullptr) return "no certificate";
  char subject[256] = "?";
  X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
  std::string out = std::string(subject) + ", expires " + asn1_time_text(X509_get0_notAfter(cert));
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) out += " (EXPIRED)";
  return out;
}

}  // namespace

Context::~Context() { SSL_CTX_free(ctx_); }

std::shared_ptr<const Context> Context::server(const ServerFiles& files, std::string& problem) {
  // The key must be the operator's secret, as PostgreSQL insists for ssl_key_file.
  struct stat key_stat{};
  if (stat(files.key_file.c_str(), &key_stat) != 0) {
    problem = "cannot read key_file " + files.key_file + ": " + std::strerror(errno);
    return nullptr;
  }
  if ((key_stat.st_mode & S_IRWXO) != 0) {
    problem = "key_file " + files.key_file +
              " is readable by every user on this machine: make it private (chmod 600, owned by sluice's user)";
    return nullptr;
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) {
    problem = "cannot create a TLS context: " + openssl_reason();
    return nullptr;
  }
  std::shared_ptr<Context> context(new Context(ctx));
  SSL_CTX_set_min_proto_version(ctx, files.min_version);
  // No renegotiation (a CPU exhaustion vector), no compression (CRIME), our cipher order.
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Idle sessions (most of an agent fleet) give their record buffers back.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  // Resumption is by ticket; a shared session cache would put a lock on every handshake.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
  if (SSL_CTX_use_certificate_chain_file(ctx, files.cert_file.c_str()) != 1) {
    problem = "cannot load cert_file " + files.cert_file + ": " + openssl_reason();
    return nullptr;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, files.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
      problem = "key_file " + files.key_file + " does not match the certificate in " + files.cert_file;
      ERR_clear_error();
      return nullptr;
    }
    problem = "cannot load key_file " + files.key_file + ": " + openssl_reason() +
              " (sluice needs an unencrypted PEM key)";
    return nullptr;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    problem = "key_file " + files.key_file + " does not match the certificate in " + files.cert_file;
    ERR_clear_error();
    return nullptr;
  }
  context->description_ = certificate_description(ctx);
  return context;
}

std::shared_ptr<const Context> Context::client(const std::string& ca_file, std::string& problem,
                                               const std::string& cert_file, const std::string& key_file) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) {
    problem = "cannot create a TLS context: " + openssl_reason();
    return nullptr;
  }
  std::shared_ptr<Context> context(new Context(ctx));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (!ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
      problem = "cannot load CA file " + ca_file + ": " + openssl_reason();
      return nullptr;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
  if (!cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
      problem = "cannot use client certificate " + cert_file + " with key " + key_file + ": " + openssl_reason();
      return nullptr;
    }
  }
  context->description_ = ca_file.empty() ? "client, peer not verified" : "client, CA " + ca_file;
  return context;
}

Stream::Stream(std::shared_ptr<const Context> context, Role role, const std::string& server_name)
    : context_(std::move(context)) {
  ssl_ = SSL_new(context_->native());
  if (ssl_ == nullptr) {
    error_ = "cannot create a TLS session: " + openssl_reason();
    return;
  }
  BIO* bio = BIO_new(ring_bio_method());
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);  // one BIO both ways; the SSL owns it
  if (role == Role::server) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
    if (!server_name.empty()) expect_peer_name(ssl_, server_name);
  }
}

Stream::~Stream() { SSL_free(ssl_); }

void Stream::queue_plain_prefix(std::span<const uint8_t> bytes) { staging_.insert(staging_.end(), bytes.begin(), bytes.end()); }

Stream::Status Stream::start_handshake() {
  size_t got = 0;
  uint8_t none[1];
  return read(std::span<uint8_t>(none, 0), got);
}

void Stream::feed(std::span<const uint8_t> ciphertext) { input_ = ciphertext; }

int Stream::bio_read(char* out, int size) {
  BIO* bio = SSL_get_rbio(ssl_);
  BIO_clear_retry_flags(bio);
  if (input_.empty()) {
    BIO_set_retry_read(bio);
    return -1;
  }
  const size_t n = std::min(input_.size(), static_cast<size_t>(size));
  std::memcpy(out, input_.data(), n);
  input_ = input_.subspan(n);
  return static_cast<int>(n);
}

int Stream::bio_write(const char* data, int size) {
  BIO_clear_retry_flags(SSL_get_wbio(ssl_));
  staging_.insert(staging_.end(), data, data + size);
  return size;
}

Stream::Status Stream::fail_with_openssl_error(const char* during) {
  error_ = std::string(during) + ": " + openssl_reason();
  return Status::failed;
}

Stream::Status Stream::read(std::span<uint8_t> out, size_t& got) {
  got = 0;
  if (ssl_ == nullptr || !error_.empty()) return Status::failed;
  ERR_clear_error();  // the error queue is per thread: start clean
  if (!handshake_done_) {
    const int rc = SSL_do_handshake(ssl_);
    if (rc != 1) {
      const int error = SSL_get_error(ssl_, rc);
      if (error == SSL_ERROR_WANT_READ) return Status::need_input;
      return fail_with_openssl_error("TLS handshake failed");
    }
    handshake_done_ = true;
  }
  if (out.empty()) return input_.empty() ? Status::need_input : Status::ok;
  if (SSL_read_ex(ssl_, out.data(), out.size(), &got) == 1) return Status::ok;
  switch (SSL_get_error(ssl_, 0)) {
    case SSL_ERROR_WANT_READ: return Status::need_input;
    case SSL_ERROR_ZERO_RETURN: return Status::closed;
    default: return fail_with_openssl_error("TLS record error");
  }
}

bool Stream::write(std::span<const uint8_t> plaintext) {
  if (ssl_ == nullptr || !handshake_done_ || !error_.empty()) return false;
  ERR_clear_error();
  while (!plaintext.empty()) {
    size_t written = 0;
    if (SSL_write_ex(ssl_, plaintext.data(), plaintext.size(), &written) != 1) {
      fail_with_openssl_error("TLS write failed");
      return false;
    }
    plaintext = plaintext.subspan(written);
  }
  return true;
}

std::span<const uint8_t> Stream::pending_output() {
  if (in_flight_sent_ == in_flight_.size()) {
    in_flight_.clear();
    in_flight_sent_ = 0;
    in_flight_.swap(staging_);
  }
  return std::span<const uint8_t>(in_flight_).subspan(in_flight_sent_);
}

void Stream::output_sent(size_t bytes) {
  in_flight_sent_ = std::min(in_flight_.size(), in_flight_sent_ + bytes);
  if (in_flight_sent_ < in_flight_.size()) return;
  in_flight_.clear();
  in_flight_sent_ = 0;
  // A large burst's buffer is given back, so an idle connection holds little memory.
  constexpr size_t kKeptCapacity = 64 * 1024;
  if (in_flight_.capacity() > kKeptCapacity) std::vector<uint8_t>().swap(in_flight_);
}

bool Stream::take_handshake_completed() {
  if (!handshake_done_ || handshake_reported_) return false;
  handshake_reported_ = true;
  return true;
}

std::string Stream::describe() const {
  if (ssl_ == nullptr || !handshake_done_) return "handshake incomplete";
  return std::string(SSL_get_version(ssl_)) + " " + SSL_get_cipher_name(ssl_);
}

std::string Stream::alpn() const {
  const unsigned char* name = nullptr;
  unsigned int length = 0;
  if (ssl_ != nullptr) SSL_get0_alpn_selected(ssl_, &name, &length);
  return name == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(name), length);
}

void Stream::shutdown() {
  if (ssl_ == nullptr || !handshake_done_ || !error_.empty()) return;
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

void expect_peer_name(SSL* ssl, const std::string& host) {
  in6_addr ip{};
  if (inet_pton(AF_INET, host.c_str(), &ip) == 1 || inet_pton(AF_INET6, host.c_str(), &ip) == 1) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl, host.c_str());
    SSL_set1_host(ssl, host.c_str());
  }
}

bool probe_kernel_tls(std::string& why) {
  // The "tls" upper layer protocol attaches only to an established TCP socket.
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int accepted = -1;
  bool supported = false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (listener < 0 || client < 0 || bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      listen(listener, 1) != 0 || getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0 ||
      connect(client, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      (accepted = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC)) < 0) {
    why = std::string("cannot open a loopback socket to probe: ") + std::strerror(errno);
  } else if (setsockopt(client, IPPROTO_TCP, TCP_ULP, "tls", sizeof "tls") == 0) {
    supported = true;
  } else if (errno == ENOENT) {
    why = "this kernel has no TLS module (CONFIG_TLS is not set, or modprobe tls failed)";
  } else {
    why = std::string("setsockopt(TCP_ULP, \"tls\"): ") + std::strerror(errno);
  }
  for (int fd : {listener, client, accepted})
    if (fd >= 0) ::close(fd);
  return supported;
}

}  // namespace sluice::core::tls
