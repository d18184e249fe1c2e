#include "core/https_get.h"

#include "core/tls.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace sluice::core {
namespace {

constexpr size_t kMaxHeaderBytes = 16 * 1024;

struct Url {
  std::string host;
  std::string port = "443";
  std::string path = "/";
};

bool parse_url(const std::string& url, Url& out, std::string& error) {
  constexpr std::string_view kScheme = "https://";
  if (url.compare(0, kScheme.size(), kScheme) != 0) {
    error = "only https:// URLs are fetched";
    return false;
  }
  std::string_view rest = std::string_view(url).substr(kScheme.size());
  const size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) out.path = std::string(rest.substr(slash));
  if (authority.find('@') != std::string_view::npos) {
    error = "URLs with credentials are not fetched";
    return false;
  }
  if (!authority.empty() && authority.front() == '[') {  // [IPv6]:port
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      error = "malformed IPv6 address in the URL";
      return false;
    }
    out.host = std::string(authority.substr(1, close - 1));
    authority = authority.substr(close + 1);
    if (!authority.empty() && authority.front() == ':') out.port = std::string(authority.substr(1));
  } else {
    const size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) out.port = std::string(authority.substr(colon + 1));
  }
  if (out.host.empty() || out.port.empty() || out.port.size() > 5 ||
      out.port.find_first_not_of("0123456789") != std::string::npos) {
    error = "malformed host or port in the URL";
    return false;
  }
  for (char c : out.path) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      error = "the URL's path has spaces or control characters";
      return false;
    }
  }
  return true;
}

int connect_with_timeout(const Url& url, std::chrono::milliseconds timeout, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* results = nullptr;
  const int rc = getaddrinfo(url.host.c_str(), url.port.c_str(), &hints, &results);
  if (rc != 0) {
    error = "cannot resolve " + url.host + ": " + gai_strerror(rc);
    return -1;
  }
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  int fd = -1;
  for (addrinfo* ai = results; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    // SO_SNDTIMEO bounds connect(2) too; SO_RCVTIMEO each read.
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      error = "cannot connect to " + url.host + ":" + url.port + ": " + std::strerror(errno);
      ::close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(results);
  return fd;
}

std::string openssl_error() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "connection closed";
  const char* reason = ERR_reason_error_string(code);
  return reason != nullptr ? reason : "unknown OpenSSL error";
}

// Splits "HTTP/1.x 200 ...\r\nheaders\r\n\r\nbody"; false when not a 200 with a body.
bool parse_response(const std::string& response, std::string& body, std::string& error) {
  const size_t header_end = response.find("\r\n\r\n");
  if (header_end == std::string::npos) {
    error = "the response has no end of headers";
    return false;
  }
  const std::string_view status_line = std::string_view(response).substr(0, response.find("\r\n"));
  if (status_line.size() < 12 || status_line.substr(0, 5) != "HTTP/") {
    error = "the response is not HTTP";
    return false;
  }
  const std::string_view code = status_line.substr(9, 3);
  if (code != "200") {
    error = "the server answered " + std::string(status_line.substr(9, 40));
    return false;
  }
  std::string headers(response, 0, header_end);
  for (char& c : headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (headers.find("transfer-encoding: chunked") != std::string::npos) {
    error = "the server sent a chunked body to an HTTP/1.0 request";
    return false;
  }
  body = response.substr(header_end + 4);
  // A connection cut short is caught here when the server said how long the body is.
  const size_t length_at = headers.find("\r\ncontent-length:");
  if (length_at != std::string::npos) {
    const unsigned long long expected = std::strtoull(headers.c_str() + length_at + 17, nullptr, 10);
    if (expected != body.size()) {
      error = "the response body was cut short (" + std::to_string(body.size()) + " of " + std::to_string(expected) +
              " bytes)";
      return false;
    }
  }
  return true;
}

}  // namespace

bool https_get(const HttpsRequest& request, std::string& body, std::string& error) {
  Url url;
  if (!parse_url(request.url, url, error)) return false;
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  if (!ctx) {
    error = "cannot create a TLS context";
    return false;
  }
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  const bool trust_loaded = request.ca_file.empty()
                                ? SSL_CTX_set_default_verify_paths(ctx.get()) == 1
                                : SSL_CTX_load_verify_locations(ctx.get(), request.ca_file.c_str(), nullptr) == 1;
  if (!trust_loaded) {
    error = "cannot load CA file " + (request.ca_file.empty() ? std::string("(system store)") : request.ca_file) + ": " +
            openssl_error();
    return false;
  }
  const int fd = connect_with_timeout(url, request.timeout, error);
  if (fd < 0) return false;
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
  SSL_set_fd(ssl.get(), fd);
  tls::expect_peer_name(ssl.get(), url.host);
  bool ok = false;
  std::string response;
  if (SSL_connect(ssl.get()) != 1) {
    const long verify = SSL_get_verify_result(ssl.get());
    error = "TLS with " + url.host + " failed: " +
            (verify != X509_V_OK ? std::string(X509_verify_cert_error_string(verify)) : openssl_error());
  } else {
    const std::string get = "GET " + url.path + " HTTP/1.0\r\nHost: " + url.host +
                            "\r\nAccept: application/json\r\nUser-Agent: sluice\r\nConnection: close\r\n\r\n";
    if (SSL_write(ssl.get(), get.data(), static_cast<int>(get.size())) != static_cast<int>(get.size())) {
      error = "sending the request to " + url.host + " failed: " + openssl_error();
    } else {
      const size_t limit = request.max_body_bytes + kMaxHeaderBytes;
      char buffer[16384];
      for (;;) {
        const int n = SSL_read(ssl.get(), buffer, sizeof buffer);
        if (n <= 0) {
          const int reason = SSL_get_error(ssl.get(), n);
          // A server may close without close_notify after an HTTP/1.0 response.
          ok = reason == SSL_ERROR_ZERO_RETURN || reason == SSL_ERROR_SYSCALL || reason == SSL_ERROR_SSL;
          if (reason == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            error = "reading from " + url.host + " timed out";
            ok = false;
          }
          ERR_clear_error();
          break;
        }
        response.append(buffer, static_cast<size_t>(n));
        if (response.size() > limit) {
          error = "the response from " + url.host + " is larger than " + std::to_string(request.max_body_bytes) + " bytes";
          break;
        }
      }
      if (ok) {
        ok = parse_response(response, body, error);
        if (ok && body.size() > request.max_body_bytes) {
          error = "the response body is larger than " + std::to_string(request.max_body_bytes) + " bytes";
          ok = false;
        }
      } else if (error.empty()) {
        error = "reading from " + url.host + " failed";
      }
    }
  }
  ::close(fd);
  return ok;
}

}  // namespace sluice::core
