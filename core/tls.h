// TLS over io_uring: OpenSSL does the handshake and the record layer, the shard's ring
// does the socket I/O. OpenSSL never touches the socket; it sees one custom BIO that
// reads the ciphertext the owner received and appends what it writes to a buffer the
// owner sends. So TLS adds no system call and no thread hop to a connection.
//
// Kernel TLS: a stream offered the socket (offer_kernel_tls) lets OpenSSL hand each
// direction's record keys to the kernel when the handshake derives them, through the
// same BIO (the ctrl calls a socket BIO would get). From then on that direction
// carries plaintext between the shard and the socket and the kernel does the records;
// a direction the kernel did not take stays in userspace. Needs a kernel built with
// CONFIG_TLS; probe_kernel_tls() says whether this one has it.
#pragma once

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace sluice::core::tls {

// Where the server's certificate comes from (paths as the operator wrote them).
struct ServerFiles {
  std::string cert_file;   // PEM: the certificate, then its intermediates
  std::string key_file;    // PEM: the private key (unencrypted)
  int min_version = TLS1_2_VERSION;  // TLS1_2_VERSION or TLS1_3_VERSION
};

// An SSL_CTX holding one certificate and key, immutable once built and shared by every
// shard (SSL_new on a shared context is thread-safe). A reload builds a new one;
// connections keep the context they started with.
class Context {
 public:
  // A server context from files; null with `problem` (one sentence naming the file
  // and OpenSSL's reason) when the files are unreadable or do not match.
  static std::shared_ptr<const Context> server(const ServerFiles& files, std::string& problem);
  // A client context (sluice's connections to TLS targets, and tests). ca_file empty:
  // the peer is not verified. cert_file/key_file: a client certificate to present.
  static std::shared_ptr<const Context> client(const std::string& ca_file, std::string& problem,
                                               const std::string& cert_file = {}, const std::string& key_file = {});

  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  SSL_CTX* native() const { return ctx_; }
  // "CN=gw.example.com, expires 2027-01-01" for the log.
  const std::string& description() const { return description_; }

 private:
  explicit Context(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
  std::string description_;
};

// A one-record kernel TLS message and its control area naming the record type: sending
// (TLS_SET_RECORD_TYPE, alerts and handshake messages on a kernel send direction) and
// receiving (TLS_GET_RECORD_TYPE). The msghdr points into this object: keep it alive
// until the send or receive completes.
struct RecordTypeControl {
  msghdr message{};
  iovec iov{};
  alignas(cmsghdr) char bytes[CMSG_SPACE(sizeof(uint8_t))] = {};
  // `message` sends `record` as one record of `record_type`.
  msghdr& for_send(std::span<const uint8_t> record, uint8_t record_type);
  // `message` receives into `out` with room for the record type.
  msghdr& for_receive(std::span<uint8_t> out);
};

// Whether this OpenSSL hands receive keys to the kernel under TLS 1.3 (3.2 and later;
// Debian 12's 3.0 hands over send keys only).
bool openssl_offers_receive_keys();

// One TLS connection. The owner alternates:
//   feed(ciphertext) / read(plaintext)  for bytes from the peer,
//   write(plaintext) / pending_output() / output_sent(n)  for bytes to the peer.
// Invariants: ciphertext handed to feed() is fully consumed before read() returns
// would-block (OpenSSL keeps a partial record itself), so the caller may release its
// receive buffer after the read loop; the span pending_output() returns stays valid
// and unchanged until output_sent() (writes during a send go to a second buffer).
class Stream {
 public:
  enum class Role : uint8_t { server, client };
  enum class Status : uint8_t {
    ok,          // read(): bytes returned
    need_input,  // read(): nothing more until the peer sends more
    closed,      // the peer sent close_notify
    failed,      // handshake or record error; error() says why
  };

  // `context` is kept alive by the stream. `server_name` (client role): the host name
  // or IP address the certificate must name when the context verifies peers (also
  // sent as SNI when it is a name); empty: no name check.
  Stream(std::shared_ptr<const Context> context, Role role, const std::string& server_name = {});
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Bytes to send before any TLS record (the 'S' that answers an SSLRequest).
  void queue_plain_prefix(std::span<const uint8_t> bytes);
  // Client role: start the handshake (ClientHello goes to pending_output()).
  Status start_handshake();

  // Ciphertext from the peer; read() consumes it. `socket_idle`: no receive is armed on
  // the socket, so whatever the peer sent after these bytes is still in the kernel
  // (only then may the receive direction move to the kernel: it must see every record
  // after the handshake's last).
  void feed(std::span<const uint8_t> ciphertext, bool socket_idle = false);
  // Drives the handshake (all an empty `out` does), then decrypts into `out`: ok with `got` > 0, or need_input
  // once every fed byte is consumed, or closed/failed.
  Status read(std::span<uint8_t> out, size_t& got);

  // Encrypts plaintext into the output buffer. Only after the handshake completed.
  bool write(std::span<const uint8_t> plaintext);
  // Ciphertext to send: the buffer being sent, or else everything written since.
  std::span<const uint8_t> pending_output();
  // `bytes` of pending_output() reached the socket.
  void output_sent(size_t bytes);
  size_t output_bytes() const {
    return (in_flight_.size() - in_flight_sent_) + staging_.size() + pending_control_.size();
  }

  bool handshake_done() const { return handshake_done_; }
  // The handshake completed during the last read(): true once, then false.
  bool take_handshake_completed();
  // After the handshake: "TLSv1.3 TLS_AES_256_GCM_SHA384".
  std::string describe() const;
  // The ALPN protocol agreed ("" when none).
  std::string alpn() const;
  const std::string& error() const { return error_; }
  // Queues a close_notify alert (a polite end; nothing is read afterwards).
  void shutdown();

  // Kernel TLS. offer_kernel_tls(fd) before the handshake's first byte: OpenSSL may then
  // move either direction to the kernel on `fd` (an established TCP socket). A moved
  // send direction carries plaintext: the owner sends out-queue bytes on the socket
  // itself and the kernel frames them (this stream's output is empty from then on). A
  // moved receive direction: the owner's receives return plaintext, and a control
  // record (an alert) makes them fail with EIO; read_kernel_control_record() reads it.
  void offer_kernel_tls(int fd);
  bool kernel_tls_offered() const { return kernel_fd_ >= 0; }
  // The handshake may still move the receive direction to the kernel: the owner must
  // then keep at most one receive armed at a time (feed's socket_idle).
  bool receive_may_move_to_kernel() const {
    return kernel_fd_ >= 0 && !handshake_done_ && openssl_offers_receive_keys();
  }
  bool kernel_send() const { return kernel_send_; }
  bool kernel_receive() const { return kernel_receive_; }
  // "kernel", "kernel send, userspace receive", "userspace" (logs and audit).
  const char* records_path() const;
  // Why the kernel did not take a direction it was offered ("" when it took both or was
  // never asked).
  const std::string& kernel_tls_problem() const { return kernel_problem_; }
  // Control records (an alert) the socket could not take at once on a kernel send
  // direction: the owner sends them after its queued plaintext, with a RecordTypeControl
  // naming `record_type`, and reports what went out.
  std::span<const uint8_t> pending_control_record(uint8_t& record_type) const {
    record_type = pending_control_type_;
    return pending_control_;
  }
  void control_record_sent(size_t bytes);

  // After a receive failed with EIO on a kernel receive direction: reads the control
  // record waiting on the socket. closed: close_notify; failed: any other alert or a
  // post-handshake message the kernel cannot follow (error() says which); ok: data
  // (`got` bytes in `out`), need_input: nothing waiting after all.
  Status read_kernel_control_record(std::span<uint8_t> out, size_t& got);

  // Internal (the BIO's callbacks).
  int bio_read(char* out, int size);
  int bio_write(const char* data, int size);
  long bio_ctrl(int command, long number, void* pointer);

 private:
  Status fail_with_openssl_error(const char* during);
  bool move_direction_to_kernel(bool send_direction, const void* crypto_info);
  bool refuse_kernel(std::string why);
  bool send_output_now();
  int send_control_record(const char* data, int size);

  std::shared_ptr<const Context> context_;
  SSL* ssl_ = nullptr;
  std::span<const uint8_t> input_;
  std::vector<uint8_t> staging_;     // written since the last pending_output() swap
  std::vector<uint8_t> in_flight_;   // handed to the socket; untouched until sent
  size_t in_flight_sent_ = 0;
  bool handshake_done_ = false;
  bool handshake_reported_ = false;
  std::string error_;
  // Kernel TLS state. Invariant: when kernel_send_ became true, staging_ and in_flight_
  // were empty (everything before is on the wire); afterwards OpenSSL writes control
  // records only (sent at once, with their record type), and plaintext only if the
  // owner calls write().
  int kernel_fd_ = -1;
  bool socket_idle_ = false;
  bool upper_layer_attached_ = false;
  bool kernel_send_ = false;
  bool kernel_receive_ = false;
  uint8_t control_record_type_ = 0;  // OpenSSL's next write is this record type (0: data)
  std::vector<uint8_t> pending_control_;  // a control record the socket did not take yet
  uint8_t pending_control_type_ = 0;
  std::string kernel_problem_;
};

// Client side: the certificate must name `host` (checked when the context verifies
// peers): an IP address against IP subjectAltNames, a DNS name against DNS names (and
// sent as SNI; an IP never is, RFC 6066).
void expect_peer_name(SSL* ssl, const std::string& host);

// The ALPN name PostgreSQL 17 clients send for direct TLS (sslnegotiation=direct).
inline constexpr std::string_view kPostgresAlpn = "postgresql";

// Whether this kernel can take TLS records over (the "tls" TCP upper layer protocol).
// On false, `why` names the reason (module absent, CONFIG_TLS not set).
bool probe_kernel_tls(std::string& why);

}  // namespace sluice::core::tls
