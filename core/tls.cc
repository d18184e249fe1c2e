#include "core/tls.h"

#include <arpa/inet.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
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
long ring_bio_ctrl(BIO* bio, int command, long number, void* pointer) {
  return stream_of(bio)->bio_ctrl(command, number, pointer);
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

// OpenSSL's BIO controls for kernel TLS that <openssl/bio.h> lists as internal (its
// socket BIO answers them; so does ours). Stable across OpenSSL 3.x.
constexpr int kBioCtrlSetKtls = 72;                 // number: 1 send, 0 receive; pointer: key material
constexpr int kBioCtrlSetKtlsSendControlRecord = 74;  // number: the next write's record type
constexpr int kBioCtrlClearKtlsControlRecord = 75;
static_assert(BIO_CTRL_GET_KTLS_SEND == 73 && BIO_CTRL_GET_KTLS_RECV == 76, "OpenSSL renumbered its kernel TLS controls");

constexpr uint8_t kRecordTypeAlert = 21;
constexpr uint8_t kRecordTypeHandshake = 22;
constexpr uint8_t kRecordTypeApplicationData = 23;

// The size of the kernel's key-material struct for a cipher (OpenSSL passes a union;
// the kernel wants the exact size of the member its cipher_type names). 0: unknown.
// Set once a "tls" upper layer could not be attached for want of the module: later
// connections are not offered to the kernel (each attempt would ask for the module).
std::atomic<bool> g_kernel_tls_module_absent{false};

size_t crypto_info_size(uint16_t cipher_type) {
  switch (cipher_type) {
    case TLS_CIPHER_AES_GCM_128: return sizeof(tls12_crypto_info_aes_gcm_128);
    case TLS_CIPHER_AES_GCM_256: return sizeof(tls12_crypto_info_aes_gcm_256);
    case TLS_CIPHER_AES_CCM_128: return sizeof(tls12_crypto_info_aes_ccm_128);
    case TLS_CIPHER_CHACHA20_POLY1305: return sizeof(tls12_crypto_info_chacha20_poly1305);
    default: return 0;
  }
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

void Stream::feed(std::span<const uint8_t> ciphertext, bool socket_idle) {
  input_ = ciphertext;
  socket_idle_ = socket_idle;
}

int Stream::bio_read(char* out, int size) {
  BIO* bio = SSL_get_rbio(ssl_);
  BIO_clear_retry_flags(bio);
  // A kernel receive direction is read by the owner (plaintext), never through OpenSSL.
  if (input_.empty() || kernel_receive_) {
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
  if (kernel_send_ && control_record_type_ != 0) return send_control_record(data, size);
  staging_.insert(staging_.end(), data, data + size);
  return size;
}

long Stream::bio_ctrl(int command, long number, void* pointer) {
  switch (command) {
    case BIO_CTRL_FLUSH: return 1;  // OpenSSL flushes after each flight; the bytes are in our buffer
    case kBioCtrlSetKtls: return move_direction_to_kernel(number != 0, pointer) ? 1 : 0;
    case BIO_CTRL_GET_KTLS_SEND: return kernel_send_ ? 1 : 0;
    case BIO_CTRL_GET_KTLS_RECV: return kernel_receive_ ? 1 : 0;
    case kBioCtrlSetKtlsSendControlRecord: control_record_type_ = static_cast<uint8_t>(number); return 0;
    case kBioCtrlClearKtlsControlRecord: control_record_type_ = 0; return 0;
    default: return 0;
  }
}

msghdr& RecordTypeControl::for_send(std::span<const uint8_t> record, uint8_t record_type) {
  iov = iovec{const_cast<uint8_t*>(record.data()), record.size()};
  message = msghdr{};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = bytes;
  message.msg_controllen = sizeof bytes;
  cmsghdr* header = CMSG_FIRSTHDR(&message);
  header->cmsg_level = SOL_TLS;
  header->cmsg_type = TLS_SET_RECORD_TYPE;
  header->cmsg_len = CMSG_LEN(sizeof record_type);
  std::memcpy(CMSG_DATA(header), &record_type, sizeof record_type);
  message.msg_controllen = header->cmsg_len;
  return message;
}

msghdr& RecordTypeControl::for_receive(std::span<uint8_t> out) {
  iov = iovec{out.data(), out.size()};
  message = msghdr{};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = bytes;
  message.msg_controllen = sizeof bytes;
  return message;
}

bool openssl_offers_receive_keys() { return OpenSSL_version_num() >= 0x30200000L; }

void Stream::offer_kernel_tls(int fd) {
  if (ssl_ == nullptr || handshake_done_ || g_kernel_tls_module_absent.load(std::memory_order_relaxed)) return;
  kernel_fd_ = fd;
  SSL_set_options(ssl_, SSL_OP_ENABLE_KTLS);
}

// OpenSSL asks this when the handshake has derived a direction's keys. Refusing is
// always safe: OpenSSL then keeps that direction in userspace.
bool Stream::move_direction_to_kernel(bool send_direction, const void* crypto_info) {
  if (kernel_fd_ < 0 || crypto_info == nullptr) return false;
  const auto* info = static_cast<const tls_crypto_info*>(crypto_info);
  const size_t size = crypto_info_size(info->cipher_type);
  if (size == 0) return refuse_kernel("the kernel has no cipher for " + std::string(SSL_get_cipher_name(ssl_)));
  // The kernel must see every record after the one that carried these keys. Records
  // already taken out of the socket (the rest of this input, or a receive still armed)
  // would be lost to it. TLS 1.2 reads its Finished under the new keys, which would then
  // pass through this BIO as kernel plaintext: that direction stays in userspace.
  if (!send_direction && SSL_version(ssl_) != TLS1_3_VERSION)
    return refuse_kernel("TLS 1.2 receives stay in userspace");
  if (!send_direction && (!socket_idle_ || !input_.empty()))
    return refuse_kernel("the client sent more right behind its handshake");
  if (!upper_layer_attached_) {
    if (setsockopt(kernel_fd_, IPPROTO_TCP, TCP_ULP, "tls", sizeof "tls") != 0) {
      if (errno == ENOENT) g_kernel_tls_module_absent.store(true, std::memory_order_relaxed);
      return refuse_kernel(std::string("setsockopt(TCP_ULP, \"tls\"): ") + std::strerror(errno));
    }
    upper_layer_attached_ = true;
  }
  // Bytes written before the switch are userspace records: they must be on the wire
  // before the kernel frames anything.
  if (send_direction && !send_output_now()) return refuse_kernel("the handshake's last flight was still being sent");
  if (setsockopt(kernel_fd_, SOL_TLS, send_direction ? TLS_TX : TLS_RX, crypto_info, static_cast<socklen_t>(size)) != 0)
    return refuse_kernel(std::string(send_direction ? "setsockopt(TLS_TX): " : "setsockopt(TLS_RX): ") +
                         std::strerror(errno));
  (send_direction ? kernel_send_ : kernel_receive_) = true;
  return true;
}

bool Stream::refuse_kernel(std::string why) {
  if (!kernel_problem_.empty()) kernel_problem_ += "; ";
  kernel_problem_ += why;
  return false;
}

// Sends the pending userspace records synchronously (a handshake flight: a few KiB into
// an empty socket buffer). False, with nothing lost, when a send of the owner's is still
// in flight or the socket took only part (the rest stays queued for the owner).
bool Stream::send_output_now() {
  if (in_flight_sent_ != in_flight_.size()) return false;
  size_t sent = 0;
  while (sent < staging_.size()) {
    const ssize_t n = ::send(kernel_fd_, staging_.data() + sent, staging_.size() - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  staging_.erase(staging_.begin(), staging_.begin() + static_cast<std::ptrdiff_t>(sent));
  return staging_.empty();
}

// A control record (alert, handshake message) on a kernel send direction: one sendmsg
// naming its type, or, when the socket cannot take it now, kept for the owner to send
// after its queued plaintext (as a userspace record would have been queued).
int Stream::send_control_record(const char* data, int size) {
  const uint8_t type = control_record_type_;
  control_record_type_ = 0;
  if (type == kRecordTypeHandshake && handshake_done_) {
    // After the handshake that is a KeyUpdate answering the client's; this OpenSSL would
    // switch its own send key, which the kernel, still encrypting, cannot follow.
    error_ = "the client asked for a TLS key update, which kernel TLS cannot follow; the session is closed";
    return -1;
  }
  if (!staging_.empty() || in_flight_sent_ != in_flight_.size()) return -1;  // never after the switch
  size_t sent = 0;
  if (pending_control_.empty()) {
    RecordTypeControl control;
    const msghdr& message = control.for_send({reinterpret_cast<const uint8_t*>(data), static_cast<size_t>(size)}, type);
    ssize_t n = 0;
    do {
      n = ::sendmsg(kernel_fd_, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    sent = n > 0 ? static_cast<size_t>(n) : 0;
    if (sent == static_cast<size_t>(size)) return size;
    pending_control_type_ = type;
  } else if (pending_control_type_ != type) {
    return -1;  // two kinds of control record waiting: not a sequence OpenSSL writes
  }
  pending_control_.insert(pending_control_.end(), data + sent, data + size);
  return size;
}

void Stream::control_record_sent(size_t bytes) {
  pending_control_.erase(pending_control_.begin(),
                         pending_control_.begin() + static_cast<std::ptrdiff_t>(std::min(bytes, pending_control_.size())));
}

const char* Stream::records_path() const {
  if (kernel_send_ && kernel_receive_) return "kernel";
  if (kernel_send_) return "kernel send, userspace receive";
  if (kernel_receive_) return "kernel receive, userspace send";
  return "userspace";
}

Stream::Status Stream::read_kernel_control_record(std::span<uint8_t> out, size_t& got) {
  got = 0;
  if (!kernel_receive_) return Status::failed;
  RecordTypeControl control;
  msghdr& message = control.for_receive(out);
  ssize_t n = 0;
  do {
    n = ::recvmsg(kernel_fd_, &message, MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Status::need_input;
  if (n < 0) {
    error_ = std::string("kernel TLS receive failed: ") + std::strerror(errno);
    return Status::failed;
  }
  if (n == 0) return Status::closed;  // the connection ended without close_notify
  uint8_t type = kRecordTypeApplicationData;
  for (cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr; header = CMSG_NXTHDR(&message, header))
    if (header->cmsg_level == SOL_TLS && header->cmsg_type == TLS_GET_RECORD_TYPE) type = *CMSG_DATA(header);
  got = static_cast<size_t>(n);
  if (type == kRecordTypeApplicationData) return Status::ok;
  constexpr uint8_t kCloseNotify = 0;
  constexpr uint8_t kWarning = 1;
  if (type == kRecordTypeAlert && got >= 2 && out[1] == kCloseNotify) {
    got = 0;
    return Status::closed;
  }
  if (type == kRecordTypeAlert && got >= 2 && out[0] == kWarning) {
    got = 0;  // a warning (user_canceled before a close_notify): nothing to act on
    return Status::need_input;
  }
  error_ = type == kRecordTypeAlert ? "the peer sent TLS alert " + std::to_string(got >= 2 ? out[1] : 0)
           : type == kRecordTypeHandshake
               ? std::string("the peer sent a post-handshake TLS message (a key update?) that kernel TLS cannot follow")
               : "the peer sent a TLS record of type " + std::to_string(type);
  got = 0;
  return Status::failed;
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
